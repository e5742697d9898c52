"""arq's "run job X" arguments name a job's keys: what JobRef.run_args writes, of_run_args
reads back, and nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from acceptd.store.job_record import JobRef


@pytest.mark.parametrize("ref", [JobRef("job_a", "t1"), JobRef("job_a", "t1", "bat_b")])
def test_run_args_read_back_as_written(ref: JobRef) -> None:
    assert JobRef.of_run_args(ref.run_args("demo.echo")) == (ref, "demo.echo")
    assert JobRef.of_run_args(tuple(ref.run_args("demo.echo"))) == (ref, "demo.echo")


@pytest.mark.parametrize(
    "args",
    [None, "job_a t1 demo.echo", ["job_a", "t1"], ["job_a", "t1", "x", "b", "extra"],
     ["job_a", "t1", 5], ["job_a", None, "demo.echo"], {"a": 1}],
)  # fmt: skip
def test_arguments_run_args_did_not_write_name_no_job(args: Any) -> None:
    assert JobRef.of_run_args(args) is None
