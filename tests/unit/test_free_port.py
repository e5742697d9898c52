"""Ports for the embedded servers (cli/embedded.py): a cluster's nodes and bus ports are
picked before any is bound, so one process is never handed the same port twice in a row."""

from __future__ import annotations

from acceptd.cli.embedded import free_port


def test_ports_handed_out_together_are_all_different() -> None:
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)
