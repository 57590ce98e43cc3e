"""Prometheus rules of Sinergi's service level objectives, generated from the one list
that declares them (deploy/prometheus/slos.yml): `python -m shared.runtime.slo`
(`make slo-rules`) writes deploy/prometheus/slo_rules.yml.

Each SLO's error ratio is recorded over the windows its alerts read, and it gets two
multiwindow, multi-burn-rate alerts (Google's SRE workbook, "Alerting on SLOs"): a page
when the error budget of 28 days burns 14.4 times too fast over an hour (2% of the budget
gone) or 6 times over six hours (5%), and a ticket at 3 times over a day (10%) or at the
budgeted pace over three days. Each long window is paired with a short one (a twelfth of
it), so an alert stops soon after the burn does.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DECLARED = ROOT / "deploy" / "prometheus" / "slos.yml"
GENERATED = ROOT / "deploy" / "prometheus" / "slo_rules.yml"
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


def main() -> None:
    GENERATED.write_text(render())
    print(f"wrote {GENERATED.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
