"""A tenant's event -> endpoint count, which decides whether a status change writes an event.

The count is rebuilt on the control plane (the truth, versioned by `~v`) and copied to every
shard, whose status scripts read their own copy (lua/subs_copy.lua)."""

from __future__ import annotations

from redis.asyncio import Redis

from acceptd.core.credentials import generate_master_key
from acceptd.core.secretbox import SecretBox
from acceptd.store import keys
from acceptd.store.endpoints import EndpointStore
from acceptd.store.scripts import Scripts
from acceptd.store.shards import Shards
from acceptd.store.webhookcalls import RecountSubs, SubsCopy

VERSION = "~v"


def recount(endpoint_ids: list[str]) -> RecountSubs:
    """A rebuild of t1's counts from the endpoints named (as the caller read its set)."""
    return RecountSubs(
        tenant_endpoints=keys.tenant_endpoints("t1"),
        counts=keys.tenant_subscription_counts("t1"),
        pending=keys.SUBSCRIPTION_COPIES_PENDING,
        endpoints=[keys.endpoint(i) for i in endpoint_ids],
        tenant="t1",
        endpoint_ids=endpoint_ids,
    )


async def truth(redis: Redis) -> dict[str, str]:
    """The control plane's counts, without their version."""
    found: dict[str, str] = await redis.hgetall(keys.tenant_subscription_counts("t1"))  # type: ignore[misc]
    found.pop(VERSION, None)
    return found


async def copies(shards: Shards) -> list[dict[str, str]]:
    """Every shard's copy of the counts, with its version."""
    found = await shards.across(
        lambda pipe, shard: pipe.hgetall(keys.tenant_event_subscriptions("t1", shard))
    )
    return [copy for (copy,) in found]


async def subs(shards: Shards) -> dict[str, str]:
    """The counts, once checked that every shard's copy is the truth's, version and all."""
    control: dict[str, str] = await shards.control.hgetall(  # type: ignore[misc]
        keys.tenant_subscription_counts("t1")
    )
    assert VERSION in control
    assert await copies(shards) == [control] * shards.count
    return {field: count for field, count in control.items() if field != VERSION}


def store_of(shards: Shards, scripts: Scripts) -> EndpointStore:
    return EndpointStore(shards, scripts, SecretBox(generate_master_key()))


async def test_counts_follow_create_disable_and_delete(shards: Shards, scripts: Scripts) -> None:
    store = store_of(shards, scripts)
    one, _ = await store.create("t1", "https://a.example/", ["job.succeeded"], "")
    two, _ = await store.create("t1", "https://b.example/", ["job.succeeded", "job.failed"], "")
    assert await subs(shards) == {"job.succeeded": "2", "job.failed": "1"}
    await store.update(two.id, "t1", disabled=True)
    assert await subs(shards) == {"job.succeeded": "1"}
    await store.delete(one.id, "t1")
    assert await subs(shards) == {}


async def test_a_recount_from_a_stale_read_writes_nothing(
    shards: Shards, scripts: Scripts, redis: Redis
) -> None:
    store = store_of(shards, scripts)
    await store.create("t1", "https://a.example/", ["job.succeeded"], "")
    before = await copies(shards)
    stale = await scripts.recount_subs(recount([]))
    assert stale == 0
    assert await subs(shards) == {"job.succeeded": "1"}
    assert await copies(shards) == before  # not even the version moved


async def test_the_counts_are_copied_to_every_shard(three: Shards, redis: Redis) -> None:
    store = store_of(three, Scripts(three))
    await store.create("t1", "https://a.example/", ["job.succeeded", "job.failed"], "")
    await store.create("t1", "https://b.example/", ["job.failed"], "")
    assert await subs(three) == {"job.succeeded": "1", "job.failed": "2"}
    found = await copies(three)
    assert len(found) == 3
    assert {copy[VERSION] for copy in found} == {"2"}  # one rebuild per create
    # Three distinct keys, not one copy seen three times.
    names = {keys.tenant_event_subscriptions("t1", shard) for shard in range(3)}
    assert len(names) == 3
    assert await redis.exists(*names) == 3


async def test_a_stale_copy_is_not_written_over_a_newer_one(three: Shards) -> None:
    scripts = Scripts(three)
    copy = keys.tenant_event_subscriptions("t1", 1)
    newer = [VERSION, "3", "job.succeeded", "2"]
    assert await scripts.subs_copy(SubsCopy(copy=copy, counts=newer)) == 1
    for stale in ([VERSION, "2", "job.failed", "5"], [VERSION, "3", "job.failed", "5"]):
        assert await scripts.subs_copy(SubsCopy(copy=copy, counts=stale)) == 0
        assert await three.of(1).hgetall(copy) == {VERSION: "3", "job.succeeded": "2"}  # type: ignore[misc]
    # A newer version replaces the copy whole: an event nobody receives any more is gone.
    newest = [VERSION, "4", "job.failed", "1"]
    assert await scripts.subs_copy(SubsCopy(copy=copy, counts=newest)) == 1
    assert await three.of(1).hgetall(copy) == {VERSION: "4", "job.failed": "1"}  # type: ignore[misc]
    # Only the shard it was given: the others have no copy yet.
    assert [bool(c) for c in await copies(three)] == [False, True, False]


async def test_a_rebuild_that_loses_the_race_to_copy_leaves_the_newer_counts(
    three: Shards,
) -> None:
    """Two rebuilds of one tenant's counts: the older one's copies arrive last."""
    scripts = Scripts(three)
    store = store_of(three, scripts)
    first, _ = await store.create("t1", "https://a.example/", ["job.succeeded"], "")
    # A rebuild whose copies are held up...
    older = await scripts.recount_subs(recount([first.id]))
    assert older[:2] == [VERSION, "2"]
    await store.create("t1", "https://b.example/", ["job.failed"], "")  # ...overtaken: v3
    for shard in range(3):
        copied = await scripts.subs_copy(
            SubsCopy(copy=keys.tenant_event_subscriptions("t1", shard), counts=older)
        )
        assert copied == 0
    assert await subs(three) == {"job.succeeded": "1", "job.failed": "1"}


async def test_a_copy_left_behind_is_written_again_from_the_truth(three: Shards) -> None:
    """A crash between copies leaves a shard a version behind until the resync."""
    store = store_of(three, Scripts(three))
    await store.create("t1", "https://a.example/", ["job.succeeded"], "")
    behind = keys.tenant_event_subscriptions("t1", 2)
    await three.of(2).delete(behind)
    await three.of(2).hset(behind, mapping={VERSION: "0", "job.canceled": "1"})  # type: ignore[misc]
    await store.resync_counts("t1")
    assert await subs(three) == {"job.succeeded": "1"}


async def test_a_rebuild_whose_copies_were_never_written_is_found_by_the_sweeper(
    three: Shards,
) -> None:
    """A role that dies between the rebuild and the copies leaves its tenant pending, in the
    rebuild's own step; the sweeper's resync writes the copies and clears it."""
    scripts = Scripts(three)
    store = store_of(three, scripts)
    await store.create("t1", "https://a.example/", ["job.succeeded"], "")
    assert await store.resync_pending() == 0  # the create's copies were written
    await store.create("t1", "https://b.example/", ["job.failed"], "")
    # A rebuild, then the role dies: no copies.
    endpoint_ids = sorted(e.id for e in await store.for_tenant("t1"))
    rebuilt = await scripts.recount_subs(recount(endpoint_ids))
    assert rebuilt[:2] == [VERSION, "3"]  # one rebuild per create before it
    assert {copy[VERSION] for copy in await copies(three)} == {"2"}
    pending = keys.SUBSCRIPTION_COPIES_PENDING
    assert await three.control.hget(pending, "t1") == "3"  # type: ignore[misc]
    assert await store.resync_pending() == 1
    assert {copy[VERSION] for copy in await copies(three)} == {"3"}
    assert await three.control.hlen(pending) == 0  # type: ignore[misc]
    assert await store.resync_pending() == 0
