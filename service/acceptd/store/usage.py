"""What a tenant stores, in bytes, counted against ACCEPTD_MAX_BYTES_PER_TENANT.

The count lives in one hash per tenant and shard (keys.tenant_usage): field `bytes` is the
shard's total (a shard refuses a submit past its share of the budget), and
each retained job or batch has a field of its own with what it added (its record, the
webhook bodies of its events, its deliveries). Every write that adds bytes adds them in the
same Lua script (lua/submit.lua, lua/batch_open.lua, lua/batch_items.lua, the status
scripts that store a result, lua/delivery_create.lua); lua/forget.lua subtracts a record's
field once the index trim finds the record and its webhook bodies gone. So the count goes
down as records expire, and never drifts from what the scripts wrote.

Only a submit (or a batch) is refused past the budget: a worker's result and the webhooks
owed for accepted jobs are always written and counted, so a tenant may end a little over
its budget, and its next submit is the one refused.
"""

from __future__ import annotations

from collections.abc import Iterable

from acceptd.store import keys
from acceptd.store.layouts import UsageField
from acceptd.store.shards import Shards

# What a record costs beyond the bytes of its values: key names, field names, index
# entries, Redis's own per-key and per-field overhead (measured with MEMORY USAGE on a
# small job: about 300 bytes).
RECORD_OVERHEAD = 320
# A delivery is charged its fields plus this much for its hash; each attempt it keeps (up to
# 1 KiB of the receiver's answer among it) is charged as it is recorded.
DELIVERY_ALLOWANCE = RECORD_OVERHEAD
TOTAL_FIELD = UsageField.TOTAL


class ByteBudgetExceededError(Exception):
    """The tenant stores ACCEPTD_MAX_BYTES_PER_TENANT bytes already; nothing was written."""

    def __init__(self, tenant: str, budget: int) -> None:
        super().__init__(f"tenant {tenant} stores its budget of {budget} bytes")
        self.budget = budget


def stored_bytes(values: Iterable[str | int]) -> int:
    """What a record of these field names and values costs (UTF-8 bytes plus overhead)."""
    return RECORD_OVERHEAD + sum(len(str(v).encode()) for v in values)


async def stored_by(shards: Shards, tenant: str) -> int:
    """What the tenant stores, every shard's count summed."""
    totals = await shards.across(
        lambda pipe, shard: pipe.hget(keys.tenant_usage(tenant, shard), TOTAL_FIELD)
    )
    return sum(int(total or 0) for (total,) in totals)


async def check_budget(shards: Shards, tenant: str, budget: int) -> None:
    """ByteBudgetExceededError when the tenant stores `budget` bytes already (0: no limit):
    for writes that add to what a tenant stores outside a submit (a recovery's attempts)."""
    if budget and await stored_by(shards, tenant) >= budget:
        raise ByteBudgetExceededError(tenant, budget)
