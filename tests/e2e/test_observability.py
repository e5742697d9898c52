"""deploy/observability: the alert rules load and fire when they should (promtool, from
Debian's prometheus package), and the dashboard and rules name only metrics acceptd
exports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import acceptd.runtime.metrics  # noqa: F401 - registers the metrics

HERE = Path(__file__).resolve().parents[2] / "deploy" / "observability"
# PromQL functions, keywords and label names are not metric names.
_NOT_METRICS = {
    "sum", "max", "min", "rate", "increase", "deriv", "histogram_quantile", "by", "and", "or",
    "le", "queue", "outcome", "route", "status", "reason", "type", "job", "up", "instance",
    "humanizePercentage", "value", "labels", "__rate_interval", "unless", "on",
}  # fmt: skip


def _exported() -> set[str]:
    """Every series name the registry can expose, samples or not yet (labelled metrics have
    none until first used)."""
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_count", "_sum"),
        "gauge": ("",),
        "summary": ("_count", "_sum"),
    }
    names: set[str] = set()
    for metric in REGISTRY.collect():
        names.update(metric.name + suffix for suffix in suffixes.get(metric.type, ("",)))
    return names


def _metrics_in(expr: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', "", expr)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_strings)
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_ranges))
    return {n for n in names if n.startswith("acceptd_")}


def _promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    reason = "promtool not installed: apt-get install prometheus"
    if os.environ.get("ACCEPTD_REQUIRE_PROMTOOL") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def test_alert_rules_load_and_fire_on_their_unit_tests() -> None:
    promtool = _promtool()
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]):
        done = subprocess.run(
            [promtool, *args], cwd=HERE, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_rules_and_dashboard_use_only_exported_metrics() -> None:
    exported = _exported()
    rules = yaml.safe_load((HERE / "alerts.yml").read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((HERE / "grafana-dashboard.json").read_text())
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        expressions += [target["expr"] for target in panel["targets"]]
    used = set().union(*(_metrics_in(expr) for expr in expressions))
    assert used, "no acceptd metric found in the expressions"
    assert used - exported == set(), f"not exported by acceptd: {used - exported}"
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {
        "AcceptdJobQueueGrowing",
        "AcceptdDeliveryFailureRateHigh",
        "AcceptdReviewBacklog",
        "AcceptdEndpointDisabled",
        "AcceptdRedisMemoryHigh",
    } <= alerts
