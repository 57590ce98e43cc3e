"""deploy/prometheus/slos.yml and the rules generated from it: the file Prometheus loads
is what the list generates, the SLOs select metrics the code defines (and histogram
buckets it has), promtool's unit tests of the burn-rate alerts, and their runbooks."""

from __future__ import annotations

import re

import pytest

from services.notifications.app import NotificationMetrics
from shared.kit.metrics import KitMetrics
from shared.runtime import slo
from tests.deploy.helpers import OPERATIONS, promtool, unknown_metrics

SLOS = slo.declared()


def test_the_generated_rules_are_up_to_date() -> None:
    assert slo.GENERATED.read_text() == slo.render(), (
        "slo_rules.yml drifted from slos.yml: run `make slo-rules`"
    )


def test_promtool_checks_the_generated_rules() -> None:
    result = promtool("check", "rules", slo.GENERATED.name)
    assert result.returncode == 0, result.stdout + result.stderr
    generated = sum(len(group["rules"]) for group in slo.rules()["groups"])
    assert generated > len(SLOS) * (len(slo.WINDOWS) + len(slo.ALERTS))
    assert f"SUCCESS: {generated} rules found" in result.stdout


def test_a_fast_burn_pages_and_a_slow_burn_opens_a_ticket() -> None:
    result = promtool("test", "rules", "slo_rules_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("declared", SLOS, ids=[s["name"] for s in SLOS])
def test_each_slo_is_well_formed(declared: dict) -> None:
    assert re.fullmatch(r"[a-z]+(-[a-z]+)*", declared["name"])
    assert 0.9 <= declared["objective"] < 1
    assert f"{declared['objective']:.1%}".removesuffix(".0%").removesuffix("%") in declared["objective_text"]
    for part in ("errors", "total"):
        assert "[$window]" in declared[part], part
        assert not unknown_metrics(declared[part]), f"{part}: {unknown_metrics(declared[part])}"


def _histogram_bounds() -> dict[str, set[str]]:
    """Bucket bounds of the histograms an SLO may read, as Prometheus labels them."""
    kit = KitMetrics("check")
    NotificationMetrics(kit)
    bounds: dict[str, set[str]] = {}
    for family in kit.registry.collect():
        if family.type == "histogram":
            # A labelled histogram has no samples until used: its bounds from the child.
            histogram = kit.registry._names_to_collectors[f"{family.name}_bucket"]
            child = (
                histogram.labels(*["x"] * len(histogram._labelnames)) if histogram._labelnames else histogram
            )
            bounds[family.name] = {
                s.labels["le"] for s in child.collect()[0].samples if s.name.endswith("_bucket")
            }
    return bounds


@pytest.mark.parametrize("declared", SLOS, ids=[s["name"] for s in SLOS])
def test_latency_thresholds_are_buckets_of_the_histograms(declared: dict) -> None:
    """`le="5.0"` selects a bucket only if the histogram has exactly that bound."""
    bounds = _histogram_bounds()
    for histogram, le in re.findall(r"(\w+)_bucket\{[^}]*le=\"([^\"]+)\"", declared["errors"]):
        assert le in bounds[histogram], f"{histogram} has no bucket {le}: {sorted(bounds[histogram])}"


def test_the_alerts_and_every_slo_have_a_runbook() -> None:
    docs = OPERATIONS.read_text(encoding="utf-8")
    headings = {line.lstrip("#").strip() for line in docs.splitlines() if line.startswith("#")}
    for alert in slo.ALERTS:
        assert alert.name in headings, alert.name
    for declared in SLOS:
        assert f"SLO {declared['name']}" in headings, declared["name"]
        assert declared["objective_text"] in docs, declared["name"]
