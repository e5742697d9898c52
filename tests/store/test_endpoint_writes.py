"""An endpoint's changes from the API (EndpointStore.update, rotate_secret) against its
deletion: a change that read the endpoint just before a DELETE landed writes nothing. It
used to bring back a hash without a tenant, under the deleted id, that nothing would
ever remove (lua/endpoint_write.lua)."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from acceptd.store import keys
from acceptd.store.endpoints import EndpointStore
from acceptd.store.scripts import Scripts
from acceptd.store.shards import Shards
from tests.store.test_endpoint_subscriptions import store_of


def deleted_after_its_check(store: EndpointStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The change's own read of the endpoint finds it; a DELETE lands right after."""
    get = store.get

    async def found_then_deleted(endpoint_id: str, tenant: str | None = None) -> Any:
        found = await get(endpoint_id, tenant)
        monkeypatch.setattr(store, "get", get)
        assert found is not None
        assert await store.delete(endpoint_id, found.tenant)
        return found

    monkeypatch.setattr(store, "get", found_then_deleted)


@pytest.mark.parametrize("change", ["update", "enable", "rotate"])
async def test_a_change_that_raced_a_deletion_leaves_nothing(
    shards: Shards,
    scripts: Scripts,
    redis: Redis,
    monkeypatch: pytest.MonkeyPatch,
    change: str,
) -> None:
    store = store_of(shards, scripts)
    endpoint, _ = await store.create("t1", "https://a.example/", ["job.succeeded"], "")
    deleted_after_its_check(store, monkeypatch)
    if change == "rotate":
        assert await store.rotate_secret(endpoint.id, "t1") is None
    else:
        changed = await store.update(
            endpoint.id,
            "t1",
            headers={"X-Token": "new"},
            disabled=False if change == "enable" else None,
        )
        assert changed is None
    assert await redis.exists(keys.endpoint(endpoint.id)) == 0
    assert await store.get(endpoint.id) is None
    assert await store.for_tenant("t1") == []


async def test_a_change_is_made_only_to_the_tenants_own_endpoint(
    shards: Shards, scripts: Scripts
) -> None:
    store = store_of(shards, scripts)
    endpoint, _ = await store.create("t1", "https://a.example/", ["job.succeeded"], "")
    assert await store.update(endpoint.id, "t2", url="https://b.example/") is None
    assert await store.rotate_secret(endpoint.id, "t2") is None
    changed = await store.update(endpoint.id, "t1", url="https://b.example/", disabled=True)
    assert changed is not None
    assert (changed.url, changed.disabled) == ("https://b.example/", True)
    enabled = await store.update(endpoint.id, "t1", disabled=False)
    assert enabled is not None
    assert (enabled.disabled, enabled.disabled_reason, enabled.disabled_ms) == (False, None, None)
    rotated = await store.rotate_secret(endpoint.id, "t1")
    assert rotated is not None
    assert len(await store.signing_secrets(endpoint.id)) == 2  # the new, and the old a while
