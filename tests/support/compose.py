"""What Docker Compose does to a compose file's strings and environment, without an engine
(none runs on these machines): variable interpolation, and the image's own ENV."""

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
