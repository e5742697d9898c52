from acceptd.core import ids


def test_ids_sort_in_creation_order_even_within_a_millisecond() -> None:
    made = [ids.new_id("job") for _ in range(2000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_shape_check() -> None:
    good = ids.new_id("job")
    assert ids.looks_like("job", good)
    assert not ids.looks_like("msg", good)
    assert not ids.looks_like("job", good + "x")
    assert not ids.looks_like("job", "job_" + "I" * 26)


def _reference_encoding(value: int, length: int) -> str:
    """Crockford base32, one character at a time: what ids have always been."""
    return "".join(ids._ALPHABET[(value >> 5 * (length - 1 - i)) & 31] for i in range(length))


def test_ids_encode_as_they_always_did() -> None:
    made = ids.new_id("job", 5)
    body = made.partition("_")[2]
    assert body[24:] == _reference_encoding(5, 2)
    for value in (0, 1, 31, 32, 1023, 1024, (1 << 120) - 1, 0x1234_5678_9ABC_DEF0_1234_5678_9A):
        for length in (2, 14, 24, 26):
            assert ids._encode(value, length) == _reference_encoding(value, length)


def test_every_shard_and_time_reads_back_from_its_id() -> None:
    for shard in range(ids.MAX_SHARDS):
        assert ids.shard_of(ids.new_id("dlv", shard)) == shard
    at = 1_780_000_000_123
    assert ids.time_of(ids.id_at("job", at)) == at
    assert ids.id_at("job", at) < ids.id_at("job", at + 1)
