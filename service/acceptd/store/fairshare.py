"""Fair share between tenants, on the job queue itself: a tenant's backlog delays its own
jobs, not another's (API.md, "Fair share between tenants").

Each shard keeps one queue (arq's sorted set), as before; what changed is a job's score.
It is a *tag* of start-time fair queueing (Goyal et al., SFQ), not a due time: a tenant's
next job is tagged with the later of the lane's virtual time (the highest tag a worker has
taken) and the tag after the tenant's previous job, plus COST / weight. Workers still take
the lowest scores first, so they serve the tenants with jobs waiting in turn, in
proportion to their weights; a tenant alone gets every slot; a tenant that was idle starts
at the front, not behind everybody's backlog; one tenant's jobs keep their order.
Compared with a queue per tenant and a ring of tenants (BullMQ Pro's groups): nothing to
visit per tenant, so a pickup costs the same with 1 tenant or 100,000 and an idle worker
polls nothing per tenant; the price is a few commands inside the scripts that queue and
take jobs (bench/commands.py counts them).

High priority is a lane of its own: its scores sit below every normal one (HIGH_LANE), so
a high job goes first, and tenants share the high lane fairly too. A job that waits for a
time waits in the scheduled set (scheduled) or the retrying set (a retry's delay) and gets
its tag when it is due.

Limits, both counted per shard in the same hash, in the scripts that take and end runs:
- a tenant's *running cap* (`acceptd tenants limits NAME --max-running N`);
- a job's *concurrency key* and its limit: at most that many jobs of the key run at once.
A job that a limit has no room for is *parked* (out of the queue, its tag kept) and goes
back when a run of that limit ends, in the same step, so no parked job waits for a poll.
A run holds its slot until its run ends for good. A job a worker takes waits in the
running set, scored by its lease (ACCEPTD_JOB_LEASE_SECONDS, by the server's clock); if
its worker dies, the workers' scheduler puts it back into the queue one lease later, still
in its slot, and the next worker runs it in that slot: a slot is never lost and never
doubled. A run's marker holds its token, so a run whose lease lapsed while its worker
lived on cannot end, retry or hand back the run that replaced it.
Placement (store/placement.py) keeps what a limit counts on one shard: a capped tenant's
jobs on its home shard, a concurrency key's jobs on the key's shard.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from importlib.resources import files

from acceptd.core.statuses import TERMINAL_STATUSES
from acceptd.store import keys
from acceptd.store.luacall import script_text
from acceptd.store.scriptcalls import FairUnpark
from acceptd.store.shards import Shards
from acceptd.store.tracedscript import TracedScript

# A job's cost in virtual time at weight 1; a weight divides it, rounded down to an
# integer (within 1 % up to MAX_WEIGHT). Tags are integers: exact in Lua and in scores.
# At 1,000 jobs a second a shard's tags reach HIGH_LANE in about 35 years.
COST = 1000
# High-lane scores are their tags minus this: below every normal score.
HIGH_LANE = 2**50
# Parked jobs one release puts back at most (a cap removed, say): the next releases go on.
MAX_UNPARK = 100
MAX_WEIGHT = 100

# The statuses a job ends in (core/statuses.py) as a Lua table, for every script that
# asks (store/scripts.py gives it to the status scripts too): Lua and Python agree.
TERMINAL_TABLE = "{" + ", ".join(f"{s.value} = true" for s in sorted(TERMINAL_STATUSES)) + "}"
_PRELUDE = (
    f"local COST, HIGH_LANE, MAX_UNPARK = {COST}, {HIGH_LANE}, {MAX_UNPARK}\n"
    f"local ENDED = {TERMINAL_TABLE}\n"
    + files("acceptd.store").joinpath("lua", "_fair.lua").read_text(encoding="utf-8")
)


def with_prelude(source: str) -> str:
    """A script that queues, takes or ends jobs of the job queue, with the fair-share
    functions (store/lua/_fair.lua) above it."""
    return _PRELUDE + source


@dataclass(frozen=True)
class TenantLimits:
    weight: int = 1
    max_running: int | None = None


@dataclass(frozen=True)
class TenantShare:
    """What the console's system view shows of a tenant, summed over the shards."""

    tenant: str
    queued: int
    running: int
    weight: int
    max_running: int | None


async def apply_limits(shards: Shards, tenant: str, limits: TenantLimits) -> None:
    """Writes the tenant's weight and cap where every shard's scripts read them, then puts
    back the parked jobs a raised or removed cap now lets run."""
    source = with_prelude(script_text(FairUnpark))
    unpark = TracedScript(FairUnpark, shards.control.register_script(source), shards)

    async def one(shard: int) -> None:
        client = shards.of(shard)
        state = keys.fair_share(shard)
        async with client.pipeline(transaction=True) as pipe:
            if limits.weight == 1:
                pipe.hdel(state, f"w:{tenant}")
            else:
                pipe.hset(state, f"w:{tenant}", str(limits.weight))
            if limits.max_running is None:
                pipe.hdel(state, f"cap:{tenant}")
            else:
                pipe.hset(state, f"cap:{tenant}", str(limits.max_running))
            await pipe.execute()
        wakeup = keys.wakeup(keys.JOBS_WAKEUP, shard)
        # MAX_UNPARK at a time: a removed cap may free thousands.
        woken = 0
        while True:
            call = FairUnpark(
                queue=keys.job_queue(shard),
                fair_share=state,
                parked=keys.parked_jobs(shard),
                tenant=tenant,
                wakeup=wakeup,
                went_back=woken,
            )
            now_woken: int = await unpark(call, client=client)
            woken += now_woken
            if now_woken < MAX_UNPARK:
                break

    await asyncio.gather(*(one(shard) for shard in range(shards.count)))


async def shares(shards: Shards) -> list[TenantShare]:
    """Every tenant with jobs queued or running, or with limits set: one HGETALL per shard."""
    states = await shards.across(lambda pipe, shard: pipe.hgetall(keys.fair_share(shard)))
    queued: dict[str, int] = {}
    running: dict[str, int] = {}
    weights: dict[str, int] = {}
    caps: dict[str, int] = {}
    for (state,) in states:
        for field, value in state.items():
            kind, _, tenant = field.partition(":")
            if kind == "q":
                queued[tenant] = queued.get(tenant, 0) + int(value)
            elif kind == "r":
                running[tenant] = running.get(tenant, 0) + int(value)
            elif kind == "w":
                weights[tenant] = int(value)
            elif kind == "cap":
                caps[tenant] = int(value)
    # A tenant's running count stays at 0 once it has run (_fair.lua count_down).
    tenants = sorted(
        {
            *(t for t, n in queued.items() if n),
            *(t for t, n in running.items() if n),
            *weights,
            *caps,
        }
    )
    return [
        TenantShare(
            tenant=tenant,
            # q counts every entry: those running, and the parked, are in it.
            queued=max(0, queued.get(tenant, 0) - running.get(tenant, 0)),
            running=running.get(tenant, 0),
            weight=weights.get(tenant, 1),
            max_running=caps.get(tenant),
        )
        for tenant in tenants
    ]
