"""deploy/grafana: provisioning and dashboards. Every query of every panel (and of every
template variable) may only select metrics the code defines (shared/ and services/),
FastStream's Kafka metrics, or Prometheus' own series."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.runtime import slo
from tests.deploy.helpers import DEPLOY, defined_metric_families, promql_metric_names, unknown_metrics

GRAFANA = DEPLOY / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _queries(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in _panels(board["panels"]):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            query = query["query"] if isinstance(query, dict) else query
            # Grafana's label_values(<selector>, <label>): the label is not a metric.
            match = re.fullmatch(r"label_values\((.*),\s*\w+\s*\)", query.strip())
            yield f"variable {variable['name']}", match.group(1) if match else query


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_provisioning() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (prometheus,) = datasources["datasources"]
    assert prometheus["uid"] == "prometheus" and prometheus["type"] == "prometheus"
    assert prometheus["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "sinergi.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/etc/grafana/dashboards"  # the compose mount


def test_the_four_dashboards() -> None:
    assert {p.name for p in DASHBOARDS} == {
        "sinergi-platform.json",
        "sinergi-domain.json",
        "sinergi-smart-city.json",
        "sinergi-slo.json",
    }
    uids = [_load(p)["uid"] for p in DASHBOARDS]
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_dashboard_is_valid_and_queries_known_metrics(path: Path) -> None:
    board = _load(path)
    assert board["title"] and board["uid"] == path.stem and "sinergi" in board["tags"]
    ids = [p["id"] for p in _panels(board["panels"])]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    queries = list(_queries(board))
    assert queries
    selected: set[str] = set()
    for title, expr in queries:
        assert expr.strip(), title
        assert expr.count("(") == expr.count(")"), f"{title}: {expr}"
        assert not unknown_metrics(expr), f"{path.name} / {title}: unknown metrics {unknown_metrics(expr)}"
        selected |= promql_metric_names(expr)
    # Sinergi's own metrics, or (the SLO dashboard) only the series its SLO rules record.
    assert any(name.startswith(("sinergi_", "slo:")) for name in selected)
    for panel in _panels(board["panels"]):
        if panel.get("targets"):
            assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]


def test_platform_dashboard_covers_the_platform_metrics() -> None:
    board = _load(GRAFANA / "dashboards" / "sinergi-platform.json")
    selected = {name for _, expr in _queries(board) for name in promql_metric_names(expr)}
    for needed in (
        "sinergi_http_requests_total",
        "sinergi_http_request_duration_seconds_bucket",
        "sinergi_outbox_pending_events",
        "sinergi_outbox_oldest_pending_age_seconds",
        "sinergi_consumer_lag_messages",
        "sinergi_dead_letters_total",
        "faststream_published_messages_total",
        "faststream_received_messages_total",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "sinergi_memory_budget_bytes",
        "sinergi_db_pool_connections_in_use",
        "sinergi_db_pool_acquire_wait_seconds_bucket",
        "sinergi_build_info",
        "sinergi_outbox_batch_events_bucket",
        "sinergi_consumer_batch_records_bucket",
        "sinergi_consumer_restarts_total",
        "slo:error_budget_remaining:ratio",
        "slo:error_ratio:rate1h",
        "slo:objective",
    ):
        assert needed in selected, needed


def test_domain_dashboards_show_every_service_family() -> None:
    selected = {
        name for path in DASHBOARDS for _, expr in _queries(_load(path)) for name in promql_metric_names(expr)
    }
    for service in ("complaints", "permits", "health", "notifications", "integration"):
        families = [f for f in defined_metric_families() if f.startswith(f"sinergi_{service}_")]
        if families:
            assert any(name.startswith(f"sinergi_{service}_") for name in selected), service


def test_smart_city_dashboard_links_to_the_integration_view() -> None:
    board = _load(GRAFANA / "dashboards" / "sinergi-smart-city.json")
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert "integration_url" in variables
    text = " ".join(p.get("options", {}).get("content", "") for p in _panels(board["panels"]))
    for page in ("/api/dimensions", "/api/masterplan", "/lacak"):
        assert "${integration_url}" + page in text, page
    assert any(link.get("url", "").startswith("${integration_url}") for link in board["links"])


def test_the_slo_dashboard_is_what_slos_yml_generates() -> None:
    assert slo.DASHBOARD.read_text(encoding="utf-8") == slo.render_dashboard(), (
        "sinergi-slo.json drifted from slos.yml: run `make slo-rules`"
    )


@pytest.mark.parametrize("declared", slo.declared(), ids=[s["name"] for s in slo.declared()])
def test_each_slo_has_its_panels_on_the_recorded_series(declared: dict[str, Any]) -> None:
    """Objective, SLI over the period, budget remaining and burn rates, each reading only
    series that slo_rules.yml records, for this SLO."""
    board = _load(slo.DASHBOARD)
    recorded = {
        rule["record"]
        for group in yaml.safe_load(slo.GENERATED.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    rows = [
        p for p in board["panels"] if p["type"] == "row" and p["title"].startswith(f"{declared['name']}:")
    ]
    assert len(rows) == 1
    y = rows[0]["gridPos"]["y"]
    panels = {p["title"]: p for p in board["panels"] if p["type"] != "row" and p["gridPos"]["y"] == y + 1}
    assert set(panels) == {"Objective", f"SLI, {slo.PERIOD}", "Error budget remaining", "Burn rate"}
    burns = [target["legendFormat"] for target in panels["Burn rate"]["targets"]]
    assert burns == [burn.long for alert in slo.ALERTS for burn in alert.burns]
    for title, panel in panels.items():
        for target in panel["targets"]:
            expr = target["expr"]
            names = promql_metric_names(expr)
            assert names and names <= recorded, f"{title}: {names - recorded} not recorded by slo_rules.yml"
            assert expr.count(f'slo="{declared["name"]}"') == len(re.findall(r"slo:\w+:?\w*\{", expr)), expr
