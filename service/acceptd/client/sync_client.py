"""The blocking client: every call of `Client`, for scripts and non-async code."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from acceptd.client.async_client import Client, Items

T = TypeVar("T")


class SyncClient:
    """The same calls, blocking, for scripts and non-async code (not inside a running loop)."""

    def __init__(self, base_url: str, api_key: str | None = None, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = Client(base_url, api_key, **options)

    def _run(self, call: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(call)

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._run(self._client.close())
        self._loop.close()

    def submit(self, type: str, input: dict[str, Any], **options: Any) -> dict[str, Any]:
        return self._run(self._client.submit(type, input, **options))

    def get(self, job_id: str) -> dict[str, Any]:
        return self._run(self._client.get(job_id))

    def list(self, **filters: Any) -> dict[str, Any]:
        return self._run(self._client.list(**filters))

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._run(self._client.cancel(job_id))

    def wait(self, job_id: str, timeout: float = 300.0, **options: Any) -> dict[str, Any]:
        return self._run(self._client.wait(job_id, timeout, **options))

    def deliveries(self, job_id: str) -> Items:
        return self._run(self._client.deliveries(job_id))

    def complete(self, job_id: str, token: str, result: Any) -> dict[str, Any]:
        return self._run(self._client.complete(job_id, token, result))

    def fail(self, job_id: str, token: str, title: str = "failed externally", **kw: Any) -> Any:
        return self._run(self._client.fail(job_id, token, title, **kw))

    def submit_batch(self, items: Sequence[dict[str, Any]], **options: Any) -> dict[str, Any]:
        return self._run(self._client.submit_batch(items, **options))

    def get_batch(self, batch_id: str) -> dict[str, Any]:
        return self._run(self._client.get_batch(batch_id))

    def redeliver(self, delivery_id: str) -> dict[str, Any]:
        return self._run(self._client.redeliver(delivery_id))
