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
