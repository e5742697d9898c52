"""Where the client verbs find the API and the key: the flags, else ACCEPTD_URL and
ACCEPTD_API_KEY, else the profile in the config file, else the `acceptd dev` running from
./.acceptd, else http://127.0.0.1:8000.

The config file (`$ACCEPTD_CONFIG`, else `$XDG_CONFIG_HOME/acceptd/config.toml`, else
`~/.config/acceptd/config.toml`) holds one table per profile:

    [default]
    url = "http://127.0.0.1:8000"
    api_key = "acc_…"

    [production]
    url = "https://acceptd.example.com"
    api_key = "acc_…"

`--profile NAME` (or ACCEPTD_PROFILE) picks one; `default` otherwise.
"""

from __future__ import annotations

import os
import stat
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acceptd.cli.devfiles import DEFAULT_DATA_DIR, DevFiles

DEFAULT_API_URL = "http://127.0.0.1:8000"
DEFAULT_PROFILE = "default"
# The environment variables the client verbs read (the server's are in core/settings.py).
CLIENT_VARIABLE_MEANINGS = {
    "ACCEPTD_URL": "the API's base URL; unset: the config profile's, else the running `dev`'s, "
    "else http://127.0.0.1:8000",
    "ACCEPTD_API_KEY": "the API key sent as `Authorization: Bearer`; unset: the config "
    "profile's, else the running `dev`'s",
    "ACCEPTD_PROFILE": "the profile of the config file to use (default `default`)",
    "ACCEPTD_CONFIG": "the config file (default `$XDG_CONFIG_HOME/acceptd/config.toml`, "
    "else `~/.config/acceptd/config.toml`)",
    "NO_COLOR": "set (to anything): no colour even on a terminal",
}
CLIENT_VARIABLES = tuple(name for name in CLIENT_VARIABLE_MEANINGS if name.startswith("ACCEPTD_"))


class ConfigError(Exception):
    pass


def config_path() -> Path:
    if os.environ.get("ACCEPTD_CONFIG"):
        return Path(os.environ["ACCEPTD_CONFIG"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "acceptd" / "config.toml"


def _profile(name: str | None) -> tuple[str, dict[str, Any]]:
    chosen = name or os.environ.get("ACCEPTD_PROFILE") or DEFAULT_PROFILE
    path = config_path()
    if not path.exists():
        if name or os.environ.get("ACCEPTD_PROFILE"):
            raise ConfigError(f"profile {chosen!r}: no config file at {path}")
        return chosen, {}
    try:
        tables = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    table = tables.get(chosen)
    if table is None:
        if chosen != DEFAULT_PROFILE:
            known = ", ".join(sorted(tables)) or "none"
            raise ConfigError(f"{path} has no profile {chosen!r} (profiles: {known})")
        return chosen, {}
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{chosen}] must be a table")
    if "api_key" in table and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        print(
            f"warning: {path} holds an API key and others can read it (chmod 600)", file=sys.stderr
        )
    return chosen, table


@dataclass(frozen=True)
class Connection:
    url: str
    api_key: str | None
    profile: str


def resolve(url: str | None, api_key: str | None, profile: str | None) -> Connection:
    """Each value from the first place that has it (see the module's docstring)."""
    name, table = _profile(profile)
    beside_dev = DevFiles(DEFAULT_DATA_DIR).running()
    found_url = (
        url
        or os.environ.get("ACCEPTD_URL")
        or table.get("url")
        or (beside_dev[0] if beside_dev else None)
        or DEFAULT_API_URL
    )
    found_key = (
        api_key
        or os.environ.get("ACCEPTD_API_KEY")
        or table.get("api_key")
        or (beside_dev[1] if beside_dev else None)
    )
    return Connection(str(found_url), str(found_key) if found_key else None, name)
