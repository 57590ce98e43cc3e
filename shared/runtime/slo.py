"""Prometheus rules of Sinergi's service level objectives, generated from the one list
that declares them (deploy/prometheus/slos.yml): `python -m shared.runtime.slo`
(`make slo-rules`) writes deploy/prometheus/slo_rules.yml and the SLO dashboard,
deploy/grafana/dashboards/sinergi-slo.json, which reads only the series those rules record.

Each SLO's error ratio is recorded over the windows its alerts read, and it gets two
multiwindow, multi-burn-rate alerts (Google's SRE workbook, "Alerting on SLOs"): a page
when the error budget of 28 days burns 14.4 times too fast over an hour (2% of the budget
gone) or 6 times over six hours (5%), and a ticket at 3 times over a day (10%) or at the
budgeted pace over three days. Each long window is paired with a short one (a twelfth of
it), so an alert stops soon after the burn does.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DECLARED = ROOT / "deploy" / "prometheus" / "slos.yml"
GENERATED = ROOT / "deploy" / "prometheus" / "slo_rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "sinergi-slo.json"
PERIOD_DAYS = 28  # what every objective is measured over, and its budget spent over
PERIOD = f"{PERIOD_DAYS} days"
PENDING = "2m"  # an alert's condition holds this long first: one odd evaluation pages nobody


@dataclass(frozen=True)
class Burn:
    """Alert when the error ratio exceeds `factor` times the budgeted ratio over both windows."""

    factor: float
    long: str
    short: str


@dataclass(frozen=True)
class Alert:
    name: str
    severity: str
    action: str  # what Alertmanager does with it: page someone, or open a ticket
    burns: tuple[Burn, ...]
    summary: str


ALERTS = (
    Alert(
        "SinergiErrorBudgetFastBurn",
        "critical",
        "page",
        (Burn(14.4, "1h", "5m"), Burn(6, "6h", "30m")),
        f"burning its error budget of {PERIOD} fast",
    ),
    Alert(
        "SinergiErrorBudgetSlowBurn",
        "warning",
        "ticket",
        (Burn(3, "1d", "2h"), Burn(1, "3d", "6h")),
        f"burning its error budget of {PERIOD} faster than it lasts",
    ),
)
WINDOWS = sorted(
    {w for alert in ALERTS for burn in alert.burns for w in (burn.long, burn.short)},
    key=lambda w: int(w[:-1]) * {"m": 1, "h": 60, "d": 1440}[w[-1]],
)


def record_name(window: str) -> str:
    """The recorded error ratio of every SLO over `window` (label `slo`)."""
    return f"slo:error_ratio:rate{window}"


def declared() -> list[dict[str, Any]]:
    """The SLOs of deploy/prometheus/slos.yml."""
    return yaml.safe_load(DECLARED.read_text())["slos"]


def _over(expr: str, window: str) -> str:
    return expr.strip().replace("$window", window).replace("\n", "\n  ")


def _burning(slo: str, budget: float, burn: Burn) -> str:
    threshold = f"{burn.factor * budget:.6g}"
    return " and ".join(f'{record_name(w)}{{slo="{slo}"}} > {threshold}' for w in (burn.long, burn.short))


def rules() -> dict[str, Any]:
    """The rule groups: one per SLO, its recording rules then its two alerts."""
    groups = []
    for slo in declared():
        name, budget = slo["name"], 1 - slo["objective"]
        labels = {"slo": name}
        recorded = [
            {
                "record": record_name(window),
                "expr": f"(\n  {_over(slo['errors'], window)}\n)\n/\n(\n  {_over(slo['total'], window)}\n)\n",
                "labels": labels,
            }
            for window in WINDOWS
        ]
        # What is left of the budget: bad and all events summed over the period from their
        # recorded 5-minute rates (cheap to sum, and weighted by traffic, unlike ratios).
        recorded += [
            {"record": "slo:errors:rate5m", "expr": _over(slo["errors"], "5m") + "\n", "labels": labels},
            {"record": "slo:events:rate5m", "expr": _over(slo["total"], "5m") + "\n", "labels": labels},
            {"record": "slo:objective", "expr": f"vector({slo['objective']})", "labels": labels},
            {
                "record": "slo:error_budget_remaining:ratio",
                "expr": (
                    f'1 - (\n  sum_over_time(slo:errors:rate5m{{slo="{name}"}}[{PERIOD_DAYS}d])\n'
                    f'  / sum_over_time(slo:events:rate5m{{slo="{name}"}}[{PERIOD_DAYS}d])\n'
                    f") / {budget:.6g}\n"
                ),
                "labels": labels,
            },
        ]
        alerts = [
            {
                "alert": alert.name,
                "expr": "\nor\n".join(f"({_burning(name, budget, burn)})" for burn in alert.burns) + "\n",
                "for": PENDING,
                "labels": {"severity": alert.severity, "action": alert.action, "slo": name},
                "annotations": {
                    "summary": f"SLO {name} is {alert.summary}",
                    "description": (
                        f"Objective: {slo['objective_text']} over {PERIOD}. The error ratio over the longer window is"
                        " {{ $value | humanizePercentage }} (budget "
                        f"{budget:.1%}, burning at {' or '.join(f'{b.factor:g}x over {b.long}' for b in alert.burns)})."
                    ),
                    "runbook": f"docs/operations.md#{alert.name.lower()}",
                },
            }
            for alert in ALERTS
        ]
        groups.append({"name": f"sinergi-slo-{name}", "rules": recorded + alerts})
    return {"groups": groups}


HEADER = """\
# GENERATED by `make slo-rules` (shared/runtime/slo.py) from slos.yml: edit that list,
# not this file. tests/deploy/test_slo.py checks it is up to date and unit-tests the
# alerts with promtool (slo_rules_test.yml).
"""


class _Dumper(yaml.SafeDumper):
    """Multi-line expressions as YAML literal blocks, written as they read; every rule
    spelled out (no anchors)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


_Dumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar(
        "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None
    ),
)


def render() -> str:
    return HEADER + yaml.dump(rules(), Dumper=_Dumper, sort_keys=False, width=200, allow_unicode=True)


PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}


def _stat(
    panel_id: int, title: str, description: str, expr: str, x: int, y: int, w: int, **field: Any
) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": PROMETHEUS,
        "gridPos": {"x": x, "y": y, "w": w, "h": 6},
        "targets": [{"refId": "A", "datasource": PROMETHEUS, "expr": expr, "instant": True}],
        "fieldConfig": {"defaults": {"unit": "percentunit", "decimals": 2, **field}, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "none",
            "textMode": "value",
        },
    }


def _thresholds(*steps: tuple[str, float | None]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": color, "value": value} for color, value in steps]}


def dashboard() -> dict[str, Any]:
    """The SLO dashboard: per SLO a row with its objective, its SLI over the period, the
    error budget left and the burn rates over the alerts' long windows (1 = spending the
    budget exactly over the period), with the alerts' factors as threshold lines."""
    panels: list[dict[str, Any]] = []
    y = 0
    for slo in declared():
        name, objective = slo["name"], slo["objective"]
        selector = f'{{slo="{name}"}}'
        base = len(panels) + 1
        panels.append(
            {
                "id": base,
                "type": "row",
                "title": f"{name}: {slo['objective_text']}",
                "collapsed": False,
                "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
                "panels": [],
            }
        )
        y += 1
        panels.append(
            _stat(base + 1, "Objective", f"{slo['objective_text']}, over {PERIOD}.", f"slo:objective{selector}",
                  0, y, 4, color={"mode": "fixed", "fixedColor": "blue"})
        )  # fmt: skip
        panels.append(
            _stat(
                base + 2,
                f"SLI, {PERIOD}",
                "Good events / all events over the period (from the recorded 5-minute rates).",
                f"1 - sum_over_time(slo:errors:rate5m{selector}[{PERIOD_DAYS}d])"
                f" / sum_over_time(slo:events:rate5m{selector}[{PERIOD_DAYS}d])",
                4, y, 5,
                thresholds=_thresholds(("red", None), ("green", objective)),
                color={"mode": "thresholds"},
            )
        )  # fmt: skip
        panels.append(
            _stat(
                base + 3,
                "Error budget remaining",
                f"What is left of the period's budget ({1 - objective:.1%} of events may fail); below 0: the SLO is missed.",
                f"slo:error_budget_remaining:ratio{selector}",
                9, y, 5,
                thresholds=_thresholds(("red", None), ("orange", 0.25), ("green", 0.5)),
                color={"mode": "thresholds"},
            )
        )  # fmt: skip
        long_windows = [burn.long for alert in ALERTS for burn in alert.burns]
        panels.append(
            {
                "id": base + 4,
                "type": "timeseries",
                "title": "Burn rate",
                "description": (
                    "Error ratio over a window / the budgeted ratio. Pages: "
                    + ", ".join(f"{b.factor:g}x over {b.long}" for b in ALERTS[0].burns)
                    + "; tickets: "
                    + ", ".join(f"{b.factor:g}x over {b.long}" for b in ALERTS[1].burns)
                    + " (each with its short window too). Runbook: docs/operations.md."
                ),
                "datasource": PROMETHEUS,
                "gridPos": {"x": 14, "y": y, "w": 10, "h": 6},
                "targets": [
                    {
                        "refId": chr(ord("A") + i),
                        "datasource": PROMETHEUS,
                        "expr": f"{record_name(window)}{selector} / on (slo) (1 - slo:objective{selector})",
                        "legendFormat": window,
                    }
                    for i, window in enumerate(long_windows)
                ],
                "fieldConfig": {
                    "defaults": {
                        "unit": "x",
                        "min": 0,
                        "custom": {"thresholdsStyle": {"mode": "line"}},
                        "thresholds": _thresholds(
                            ("green", None), *(("red" if a is ALERTS[0] else "orange", b.factor)
                                               for a in ALERTS for b in a.burns)
                        ),
                    },
                    "overrides": [],
                },
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
            }
        )  # fmt: skip
        y += 6
    return {
        "uid": "sinergi-slo",
        "title": "Sinergi — service level objectives",
        "description": f"Generated by `make slo-rules` from deploy/prometheus/slos.yml: per SLO its objective, SLI over {PERIOD}, error budget remaining and burn rates. Runbooks: docs/operations.md.",
        "tags": ["sinergi", "slo"],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-7d", "to": "now"},
        "links": [
            {
                "title": "Sinergi dashboards",
                "type": "dashboards",
                "tags": ["sinergi"],
                "asDropdown": True,
                "keepTime": True,
            }
        ],
        "templating": {"list": []},
        "panels": panels,
    }


def render_dashboard() -> str:
    return json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    GENERATED.write_text(render())
    DASHBOARD.write_text(render_dashboard(), encoding="utf-8")
    for path in (GENERATED, DASHBOARD):
        print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
