"""Which Redis errors are outages (roles back off and carry on) and which are bugs."""

from __future__ import annotations


def test_a_connection_dropped_while_watching_is_an_outage() -> None:
    """redis-py reports it as a WatchError; arq's pickup raised it through its loop and the
    worker process ended during a Redis restart."""
    from redis.exceptions import WatchError

    from acceptd.store.outages import is_outage

    assert is_outage(WatchError("A ConnectionError occurred on while watching one or more keys"))
    assert not is_outage(WatchError("Watched variable changed."))
