"""Which shard a new job (or batch) lands on (store/keys.py says what a shard is).

- Every job of a tenant with a running cap lands on the tenant's home shard: the scripts
  that take jobs count a limit on the shard they run on (store/fairshare.py), so what the
  cap counts lives in one place (its ordering keys are then all on one shard too).
- A job with an `ordering_key` lands on the key's shard: every event of the key is then
  emitted on one stream, in order, so ordered delivery keeps its order.
- A job with a `concurrency_key` lands on the key's shard, where its limit is counted
  (with an ordering key as well, on the ordering key's shard, and counted there).
- A create with an Idempotency-Key lands on the key's shard: a retry claims the same key
  record there and finds what the first created, and the create step writes the key's
  'done' value in the same atomic step as the record. With both, the ordering key decides
  (the claim is made on that shard), so a retry of the same request finds it.
- Anything else lands on a shard drawn at random: one tenant's jobs spread over every
  shard, and so over every primary of a cluster.
"""

from __future__ import annotations

import random

from acceptd.store.keys import home_shard


def job_shard(
    tenant: str,
    shards: int,
    *,
    ordering_key: str | None = None,
    concurrency_key: str | None = None,
    capped: bool = False,
    idempotency: str | None = None,
) -> int:
    if capped:
        return home_shard(f"{tenant}\ncapped", shards)
    if ordering_key:
        return home_shard(f"{tenant}\nordering\n{ordering_key}", shards)
    if concurrency_key:
        return home_shard(f"{tenant}\nconcurrency\n{concurrency_key}", shards)
    if idempotency:
        return home_shard(f"{tenant}\nidempotency\n{idempotency}", shards)
    return random.randrange(shards)  # noqa: S311 - spreading load, not a secret
