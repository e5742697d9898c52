"""What `acceptd dev` keeps in its data dir, so a restart finds the same keys and data, and
the client verbs run beside it find its URL and API key. The one place that knows the layout."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr

from acceptd.cli.embedded import ping
from acceptd.core.credentials import generate_api_key, generate_master_key, generate_secret

DEFAULT_DATA_DIR = Path(".acceptd")


class DevFiles:
    """What `dev` keeps in its data dir so that a restart finds the same keys and data."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def ensure_private_dir(self) -> None:
        """The data dir holds the master key, credentials and the store: owner-only."""
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)

    def _private(self, name: str, make: str) -> str:
        path = self.data_dir / name
        if not path.exists():
            self.ensure_private_dir()
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

    @property
    def _running_file(self) -> Path:
        return self.data_dir / "running.json"

    def write_running(self, api_url: str, api_key: str) -> None:
        """What the client verbs run beside this `dev` need: its URL and the key it took."""
        self._write_private(self._running_file, json.dumps({"url": api_url, "api_key": api_key}))

    def clear_running(self) -> None:
        self._running_file.unlink(missing_ok=True)

    def running(self) -> tuple[str, str] | None:
        """(API URL, API key) of the `dev` running from this data dir, if one is."""
        path = self._running_file
        if not path.exists():
            return None
        found = json.loads(path.read_text())
        return str(found["url"]), str(found["api_key"])

    @property
    def _url_file(self) -> Path:
        return self.data_dir / "redis.url"

    def _write_private(self, path: Path, text: str) -> None:
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)

    def write_redis_url(self, url: str) -> None:
        """Holds the embedded server's password: owner-only, like everything here."""
        self._write_private(self._url_file, url)

    def clear_redis_url(self) -> None:
        self._url_file.unlink(missing_ok=True)

    def running_redis_url(self) -> str | None:
        if not self._url_file.exists():
            return None
        url = self._url_file.read_text().strip()
        parts = urlsplit(url)
        return url if ping(parts.hostname or "", parts.port or 6379) else None
