"""What Docker Compose does to a compose file's strings and environment, without an engine
(none runs on these machines): variable interpolation, the merge of files given with -f,
and the image's own ENV."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?(?P<arg>[^}]*)\}")


class MissingVariableError(ValueError):
    pass


def interpolate(value: str, shell: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $$."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        present = name in shell
        empty = present and shell[name] == ""
        if op in (":-", "-"):
            use_default = not present or (op == ":-" and empty)
            return arg if use_default else shell[name]
        if op in (":?", "?"):
            if not present or (op == ":?" and empty):
                raise MissingVariableError(f"{name}: {arg}")
            return shell[name]
        return shell.get(name, "")

    return _VARIABLE.sub(one, value)


def service_environment(service: dict[str, Any], shell: dict[str, str]) -> dict[str, str]:
    """The environment a service's container gets from its `environment:` mapping."""
    return {k: interpolate(str(v), shell) for k, v in (service.get("environment") or {}).items()}


# Merged by replacing, not appending (the Compose Specification, "Merge").
_REPLACED = {"command", "entrypoint", "test"}


def _volume_target(volume: str | dict[str, Any]) -> str:
    return volume["target"] if isinstance(volume, dict) else volume.split(":")[1]


def _merge(base: Any, override: Any, key: str = "") -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for name, value in override.items():
            merged[name] = _merge(base[name], value, name) if name in base else value
        return merged
    if isinstance(base, list) and isinstance(override, list) and key not in _REPLACED:
        if key == "volumes":  # one mount per target path: the later file's wins
            targets = {_volume_target(v) for v in override}
            return [v for v in base if _volume_target(v) not in targets] + override
        return base + override
    return override


def merge(*files: dict[str, Any]) -> dict[str, Any]:
    """Compose files as `docker compose -f a -f b` merges them: mappings key by key (the
    later file's value wins), sequences appended, except command, entrypoint and
    healthcheck.test (replaced) and volumes (one per target). Long and short forms are not
    reconciled: each file must write a field the same way (environment as a mapping,
    depends_on as a mapping)."""
    merged: dict[str, Any] = {}
    for file in files:
        merged = _merge(merged, file)
    return merged


def dockerfile_env(dockerfile: Path) -> dict[str, str]:
    """The ENV of the image's last stage (what every container starts with)."""
    stages = dockerfile.read_text().split("\nFROM ")
    found: dict[str, str] = {}
    text = stages[-1].replace("\\\n", " ")
    for line in text.splitlines():
        if line.startswith("ENV "):
            for name, value in re.findall(r"([A-Z_][A-Z0-9_]*)=(\S+)", line):
                found[name] = value
    return found
