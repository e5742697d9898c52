"""What `acceptd dev` keeps in its data dir, so a restart finds the same keys and data, and
the client verbs run beside it find its URL and API key. The one place that knows the layout."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import SecretStr

from acceptd.cli.embedded import ping
from acceptd.core.credentials import generate_api_key, generate_master_key, generate_secret

DEFAULT_DATA_DIR = Path(".acceptd")


class DevFiles:
    """What `dev` keeps in its data dir so that a restart finds the same keys and data."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def _private(self, name: str, make: str) -> str:
        path = self.data_dir / name
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(make)
        return path.read_text().strip()

    def master_key(self) -> SecretStr:
        return SecretStr(self._private("master.key", generate_master_key()))

    def credentials(self) -> tuple[str, str]:
        fresh = json.dumps({"api_key": generate_api_key(), "secret": generate_secret()})
        stored = json.loads(self._private("credentials.json", fresh))
        return stored["api_key"], stored["secret"]

    def stored_api_key(self) -> str | None:
        """The API key a `dev` in this data dir made, if one did (never makes one)."""
        path = self.data_dir / "credentials.json"
        return str(json.loads(path.read_text())["api_key"]) if path.exists() else None

    @property
    def _url_file(self) -> Path:
        return self.data_dir / "redis.url"

    def write_redis_url(self, url: str) -> None:
        self._url_file.write_text(url)

    def clear_redis_url(self) -> None:
        self._url_file.unlink(missing_ok=True)

    def running_redis_url(self) -> str | None:
        if not self._url_file.exists():
            return None
        url = self._url_file.read_text().strip()
        host_port = url.removeprefix("redis://").split("/")[0]
        host, _, port = host_port.rpartition(":")
        return url if ping(host, int(port)) else None
