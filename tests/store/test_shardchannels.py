"""Sharded pub/sub: wake-ups and job changes go out on channels in their shard's slot
(SPUBLISH) and are heard on the node that holds it; a listener whose connection is cut
subscribes again, and tells whoever waits to look again (a message may have gone by)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable

from acceptd.store import keys, shardchannels
from acceptd.store.changes import RESUBSCRIBED, JobChanges
from acceptd.store.job_record import NewJob
from acceptd.store.jobs import JobStore
from acceptd.store.scripts import Scripts
from acceptd.store.shards import Shards
from tests.store.conftest import RETENTION_SECONDS
from tests.support.waiting import wait_until


async def told_more(told: dict[str, list[str]], channel: str, than: int) -> None:
    """Until `channel`'s function was called more than `than` times."""
    await until(functools.partial(lambda seen, n: len(seen) > n, told[channel], than))


async def until(holds: Callable[[], bool], seconds: float = 10.0) -> None:
    """Until `holds()` is true (fails the test at the deadline)."""

    async def check() -> bool:
        return holds()

    await wait_until(check, timeout=seconds)


async def kill_pubsub_clients(three: Shards) -> int:
    """Cuts every pub/sub connection, on every node that holds a shard."""
    killed = 0
    seen: set[object] = set()
    for shard in range(three.count):
        node = three.node_of(keys.wakeup(keys.JOBS_WAKEUP, shard))
        if node not in seen:
            seen.add(node)
            killed += int(await three.of(shard).client_kill_filter(_type="pubsub"))
    return killed


@contextlib.asynccontextmanager
async def listening(three: Shards, told: dict[str, list[str]]) -> AsyncIterator[None]:
    """Each channel's messages are appended to its list in `told`."""
    calls: dict[str, Callable[[str], None]] = {
        channel: seen.append for channel, seen in told.items()
    }
    task = asyncio.get_running_loop().create_task(shardchannels.listen(three, calls))
    try:
        # Subscribed: every function is called once, then.
        await until(lambda: all(told.values()))
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_wakeups_of_every_shard_reach_the_listener_and_survive_a_cut(
    three: Shards,
) -> None:
    channels = [keys.wakeup(keys.JOBS_WAKEUP, shard) for shard in range(three.count)]
    told: dict[str, list[str]] = {channel: [] for channel in channels}
    async with listening(three, told):
        # Subscribed: each is told ANYTHING (it cannot know what went by before).
        assert all(seen[0] == shardchannels.ANYTHING for seen in told.values())
        for shard, channel in enumerate(channels):
            before = len(told[channel])
            await three.of(shard).spublish(channel, f"said on {shard}")
            await told_more(told, channel, before)
            assert told[channel][-1] == f"said on {shard}"  # what was said, as said
        # Only the channel published on is told.
        counts = {channel: len(seen) for channel, seen in told.items()}
        await three.of(1).spublish(channels[1], "1")
        await until(lambda: len(told[channels[1]]) > counts[channels[1]])
        assert len(told[channels[0]]) == counts[channels[0]]
        # The connections are cut: subscribed again, every function called, and heard.
        assert await kill_pubsub_clients(three) >= 1
        await until(lambda: all(len(told[c]) > counts[c] for c in channels), seconds=10)
        assert all(told[c][-1] == shardchannels.ANYTHING for c in channels)
        for shard, channel in enumerate(channels):
            before = len(told[channel])
            await three.of(shard).spublish(channel, "1")
            await told_more(told, channel, before)


async def test_a_watcher_hears_its_jobs_changes_and_is_told_to_look_again_after_a_cut(
    three: Shards,
) -> None:
    scripts = Scripts(three)
    jobs = JobStore(three, scripts, RETENTION_SECONDS)
    changes = JobChanges(three, scripts)
    try:
        made = [await jobs.create(NewJob("t1", "demo.echo", {}, {}, None)) for _ in range(6)]
        async with contextlib.AsyncExitStack() as stack:
            queues = [await stack.enter_async_context(changes.watch(job.id)) for job in made]
            for job in made:
                await jobs.start(job.ref, max_attempts=3)
            for queue in queues:
                assert await asyncio.wait_for(queue.get(), 5) == "running"
            assert await kill_pubsub_clients(three) >= 1
            for queue in queues:
                assert await asyncio.wait_for(queue.get(), 10) == RESUBSCRIBED
            for job in made:
                await jobs.set_progress(
                    job.ref, {"fraction": 0.5, "message": None}, emit_event=False
                )
            for queue in queues:
                assert await asyncio.wait_for(queue.get(), 5) == "progress"
        # Nobody waits any more: no subscription is left on any node.
        for job in made:
            channel = keys.job_changes(job.id)
            node = three.for_key(channel)
            found = await node.execute_command("PUBSUB", "SHARDNUMSUB", channel)  # type: ignore[no-untyped-call]
            assert int(found[1]) == 0
    finally:
        await changes.close()


async def test_watchers_coming_and_going_on_one_job_do_not_disturb_the_others(
    three: Shards,
) -> None:
    """A watcher leaving a job while another arrives: our own SUNSUBSCRIBE's confirmation is
    not taken for the server leaving a moved slot, so the node's connection (every other
    watcher's) is not torn down and rebuilt."""
    changes = JobChanges(three, Scripts(three))
    try:
        async with changes.watch("job_0bystander0000000000000") as bystander:
            for _ in range(20):
                leaving = contextlib.AsyncExitStack()
                await leaving.enter_async_context(changes.watch("job_0churn000000000000000"))
                arriving = contextlib.AsyncExitStack()

                async def arrive(stack: contextlib.AsyncExitStack = arriving) -> None:
                    await asyncio.sleep(0)  # arriving just after the other starts leaving
                    await stack.enter_async_context(changes.watch("job_0churn000000000000000"))

                await asyncio.gather(leaving.aclose(), arrive())
                await asyncio.sleep(0.02)  # the reader sees the confirmations meanwhile
                await arriving.aclose()
            await asyncio.sleep(1.0)  # room for a torn-down connection to tell the bystander
            assert bystander.empty()
    finally:
        await changes.close()


async def test_a_job_queued_alone_is_named_by_its_wakeup_and_one_behind_another_is_not(
    three: Shards,
) -> None:
    """A worker takes the job a wake-up names without reading the queue (queue/wakeable.py),
    so only a job alone in its shard's queue, the one a read would find first, is named;
    its arq payload follows, naming the run (the worker starts the job with its pickup)."""
    import json

    from acceptd.core import ids

    jobs = JobStore(three, Scripts(three), RETENTION_SECONDS)
    channels = [keys.wakeup(keys.JOBS_WAKEUP, shard) for shard in range(three.count)]
    told: dict[str, list[str]] = {channel: [] for channel in channels}
    async with listening(three, told):
        queued: dict[int, list[str]] = {}
        while not any(len(found) == 2 for found in queued.values()):  # pigeonhole: bounded
            job = await jobs.create(NewJob("t1", "demo.echo", {}, {}, None))
            shard = ids.shard_of(job.id)
            queued.setdefault(shard, []).append(job.id)
            await told_more(told, channels[shard], len(queued[shard]))
        for shard, found in queued.items():
            said = told[channels[shard]][1:]  # after the ANYTHING of subscribing
            named, _, payload = said[0].partition(" ")
            assert named == found[0]
            assert json.loads(payload)["a"] == [found[0], "t1", "demo.echo"]
            assert said[1:] == ["1"][: len(found) - 1]
