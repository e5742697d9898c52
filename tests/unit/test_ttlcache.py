import time

from acceptd.core.ttlcache import TtlCache


def test_entries_expire() -> None:
    cache: TtlCache[str, str] = TtlCache(seconds=0.05, max_size=10)
    cache.put("key", "tenant")
    assert cache.get("key") == "tenant"
    time.sleep(0.06)  # past the entry's 50 ms
    assert cache.get("key") is None


def test_bounded_size_drops_everything_at_once() -> None:
    cache: TtlCache[int, int] = TtlCache(seconds=60, max_size=3)
    for n in range(3):
        cache.put(n, n)
    cache.put(3, 3)
    assert [cache.get(n) for n in range(4)] == [None, None, None, 3]
