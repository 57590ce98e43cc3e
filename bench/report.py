"""The report: bench/results/latest.md and latest.json, the plots, and the README's
headline table."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.consumers import CONSUMER_TARGETS
from bench.end_to_end import hop_lines
from bench.figures import ms, per_s, verdict
from bench.intake import COST_TARGET
from bench.portal_pages import portal_rows
from bench.rush import overload_rows, rush_lines, rush_rows
from bench.settings import PROFILE_HINT, RESULTS, ROOT
from shared.kit.metrics import MEMORY_BUDGET_MB

# (measure, where in a broker's results, how shown) for the broker comparison.
BROKER_MEASURES: tuple[tuple[str, tuple[str | int, ...], Callable[[float | None], str]], ...] = (
    ("Raw produce (msg/s)", ("baselines", "produce", "per_s"), per_s),
    ("Raw consume (msg/s)", ("baselines", "consume", "per_s"), per_s),
    ("Outbox relay drain (events/s)", ("relay", "per_s"), per_s),
    ("POST /complaints service CPU per request at 100 req/s", ("intake", "runs", 0, "service_cpu_ms_per_request"), ms),
    ("POST /applications service CPU per request at 100 req/s",
     ("intake_other", "permits", "runs", 0, "service_cpu_ms_per_request"), ms),
    ("POST /appointments service CPU per request at 100 req/s",
     ("intake_other", "health", "runs", 0, "service_cpu_ms_per_request"), ms),
    ("201 → integration view, p50", ("end_to_end", "view", "p50_ms"), ms),
    ("201 → integration view, p99", ("end_to_end", "view", "p99_ms"), ms),
    ("201 → email in the SMTP sink, p50", ("end_to_end", "email", "p50_ms"), ms),
    ("201 → email in the SMTP sink, p99", ("end_to_end", "email", "p99_ms"), ms),
    ("Integration view consumer (events/s)", ("consumers", "integration", "per_s"), per_s),
    ("Notifications consumer (events/s)", ("consumers", "notifications", "per_s"), per_s),
    ("Booking rush, p99 of every answer", ("rush", "all", "p99_ms"), ms),
    ("Overload: POST /complaints accepted p99", ("overload", "complaints", "accepted_latency", "p99_ms"), ms),
    ("Overload: POST /appointments accepted p99", ("overload", "health", "accepted_latency", "p99_ms"), ms),
)  # fmt: skip


def _dig(found: Any, path: tuple[str | int, ...]) -> float | None:
    for key in path:
        if isinstance(key, int):
            if not isinstance(found, list) or len(found) <= key:
                return None
        elif not isinstance(found, dict) or key not in found:
            return None
        found = found[key]
    return None if found is None else float(found)


def broker_lines(results: dict[str, Any]) -> list[str]:
    """The broker comparison: each measure on every broker of the run, and Apache Kafka's
    figure over Tansu's (above 1: more per second, or a longer wait)."""
    brokers: dict[str, dict[str, Any]] = results.get("brokers") or {}
    if not brokers:
        return []
    both = {"kafka", "tansu"} <= set(brokers)
    head = ["measure", *(b["label"] for b in brokers.values()), *(["Kafka / Tansu"] if both else [])]
    rows = []
    for measure, path, shown in BROKER_MEASURES:
        values = {kind: _dig(b, path) for kind, b in brokers.items()}
        if all(v is None for v in values.values()):
            continue
        cells = [shown(v) for v in values.values()]
        if both:
            kafka, tansu = values["kafka"], values["tansu"]
            cells.append(f"{kafka / tansu:.2f}" if kafka is not None and tansu else "—")
        rows.append(f"| {measure} | {' | '.join(cells)} |")
    e2e = next((b["end_to_end"] for b in brokers.values() if "end_to_end" in b), None)
    at = f" End to end at {e2e['rate']} req/s for {e2e['seconds']:.0f} s." if e2e else ""
    return [
        "## Brokers: the same scenarios on each",
        "",
        "Producers set up as the services' (acks=all; the idempotent producer on Apache Kafka, "
        f"which Tansu lacks), every broker one node on this machine.{at}",
        "",
        f"| {' | '.join(head)} |",
        "|" + "---|" * len(head),
        *rows,
        "",
    ]


# The targets of the requirement, and why a miss happens when the run's own figures do
# not say more.
RELAY_TARGET, RELAY_RATIO_TARGET = 15_000, 0.3
RELAY_WHY = "the relay reads, publishes and marks each batch on cores shared with the broker and PostgreSQL"
HELD_TARGET = 1000  # req/s per intake endpoint
P99_AT_500_TARGET = 50  # ms
E2E_TARGETS = {"view": ("integration view", 100), "email": ("email in the SMTP sink", 250)}
CODE_TARGET_MS = 1000
CODE_WHY = {
    "email": "the slowest codes wait for the delivery worker's claim and the SMTP hand-off",
    "whatsapp": "the WhatsApp channel's default rate (5/s with a burst) spaces the messages: "
    "the last of a burst waits for its token",
}
SHARED_MACHINE = "2 cores shared by the service, the generator, PostgreSQL and the broker"


def _cpu_bound(cpu_ms: float | None) -> str:
    """Why a rate is not held, from the service's CPU per request in the run."""
    if not cpu_ms:
        return f"not held on {SHARED_MACHINE}"
    return f"CPU-bound: {cpu_ms:.2f} ms of service CPU per request caps a process at ~{1000 / cpu_ms:,.0f}/s " \
        f"on a free core; here {SHARED_MACHINE}"  # fmt: skip


def _slowest_hop(hops: list[dict[str, Any]] | None) -> str:
    """The hop with the largest share of a path's mean total (bench/end_to_end.py)."""
    if not hops:
        return PROFILE_HINT
    worst = max(hops, key=lambda h: h["share"])
    return f"{worst['share']:.0%} of the mean in '{worst['hop']}'; {SHARED_MACHINE}"


def _by_broker(results: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """(figures, label) of each broker of the run: the label follows a measure's name when
    there are several; a run without a broker axis is its own figures."""
    brokers: dict[str, dict[str, Any]] = results.get("brokers") or {}
    return [(b, f" — {b['label']}" if len(brokers) > 1 else "") for b in brokers.values()] or [(results, "")]


def _labelled(rows: list[tuple[str, str, str, str]], label: str) -> list[tuple[str, str, str, str]]:
    return [(f"{measure}{label}", *rest) for measure, *rest in rows]  # type: ignore[misc]


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(measure, result, target, verdict) for the headline table: each broker-dependent
    figure once per broker (its label after the measure when there are several), a
    reason after every MISSED."""
    figures = _by_broker(results)
    postgres = (results.get("baselines") or {}).get("postgres")
    rows = (
        [("Raw asyncpg two-insert transactions", f"{postgres['per_s']:,.0f} tx/s", "—", "baseline")]
        if postgres
        else []
    )
    for found, label in figures:
        rows += _labelled(broker_rows(found, postgres), label)
    rows += [
        (f"Phase {phase}", f"failed: {error}", "runs to the end", f"MISSED: the phase failed ({error})")
        for phase, error in (results.get("failed") or {}).items()
    ]
    codes = results.get("citizen_codes")
    if codes:
        for key, label in (("email", "email in the SMTP sink"), ("whatsapp", "WhatsApp in the gateway")):
            x = codes[key]
            rows.append(
                (f"one-time code → {label}, p99 ({codes['requests']} one after the other)",
                 f"{ms(x.get('p99_ms'))} (p50 {ms(x.get('p50_ms'))})", f"≤ {CODE_TARGET_MS:,} ms",
                 verdict(x.get("p99_ms"), CODE_TARGET_MS, higher_is_better=False, why=CODE_WHY[key]))
            )  # fmt: skip
    if results.get("portal_pages"):
        rows += portal_rows(results["portal_pages"])
    rss = [(f"{where}{label}", mb) for found, label in figures for where, mb in _rss_seen(found)]
    if rss:
        worst = max(rss, key=lambda x: x[1])
        rows.append(("Largest service RSS seen", f"{worst[1]:.0f} MB ({worst[0]})", f"≤ {MEMORY_BUDGET_MB} MB",
                     verdict(worst[1], MEMORY_BUDGET_MB, higher_is_better=False,
                             why="over the memory budget")))  # fmt: skip
    return rows


def broker_rows(found: dict[str, Any], postgres: dict[str, Any] | None) -> list[tuple[str, str, str, str]]:
    """The headline rows of one broker's figures."""
    rows: list[tuple[str, str, str, str]] = []
    b, r = found.get("baselines"), found.get("relay")
    if b:
        rows += [
            ("Raw aiokafka produce (CloudEvents)", f"{b['produce']['per_s']:,.0f} msg/s", "—", "baseline"),
            ("Raw aiokafka consume", f"{b['consume']['per_s']:,.0f} msg/s", "—", "baseline"),
        ]
    if r:
        rows += [
            ("Outbox relay drain", f"{r['per_s']:,.0f} events/s", f"≥ {RELAY_TARGET:,}/s",
             verdict(r["per_s"], RELAY_TARGET, why=RELAY_WHY)),
            ("Relay / raw produce", f"{r['ratio_to_raw_produce']:.2f}", f"≥ {RELAY_RATIO_TARGET}",
             verdict(r["ratio_to_raw_produce"], RELAY_RATIO_TARGET, why=RELAY_WHY)),
        ]  # fmt: skip
    # An endpoint measured at the reference's rate only (on a broker other than the
    # runtime's) has its cost row, not a held rate.
    i = found.get("intake")
    if i and not i.get("cost_only"):
        rows += _ladder_rows(i, postgres)
    for name, other in (found.get("intake_other") or {}).items():
        if other.get("cost_only"):
            continue
        cpu = _min_cpu(other["runs"])
        rows.append(
            (f"{other['endpoint']} ({name}) highest rate held",
             f"{other['highest_held_rps']:,} req/s ({cpu:.2f} ms CPU per request)" if cpu
             else f"{other['highest_held_rps']:,} req/s", f"≥ {HELD_TARGET:,}/s",
             verdict(other["highest_held_rps"], HELD_TARGET, why=_cpu_bound(cpu)))
        )  # fmt: skip
    rows += cost_rows(found)
    e2e = found.get("end_to_end")
    if e2e:
        for key, (label, target) in E2E_TARGETS.items():
            x = e2e[key]
            missing = f", {x['missing']} not arrived" if x.get("missing") else ""
            rows.append(
                (f"201 → {label}, p99 ({e2e['rate']} req/s for {e2e['seconds']:.0f} s)",
                 f"{ms(x.get('p99_ms'))} (p50 {ms(x.get('p50_ms'))}, n={x['n']}{missing})",
                 f"≤ {target} ms", verdict(x.get("p99_ms"), target, higher_is_better=False, unmeasured_is_missed=True,
                                           why=_slowest_hop((e2e.get("hops") or {}).get(key)) if x.get("n")
                                           else "none arrived within the wait after the load"))
            )  # fmt: skip
    rows += rush_rows(found["rush"]) if found.get("rush") else []
    rows += overload_rows(found["overload"]) if found.get("overload") else []
    consumers = found.get("consumers")
    if consumers:
        for name, target in CONSUMER_TARGETS.items():
            c = consumers[name]
            ratio = c.get("ratio_to_raw_consume")
            rows.append(
                (f"{name} consumer, {consumers['events']:,} pre-loaded events",
                 f"{c['per_s']:,.0f} events/s" + (f", {ratio:.3f} of raw consume" if ratio else "")
                 + f" (RSS {c['rss_mb']:.0f} MB)", f"≥ {target:,}/s",
                 verdict(c["per_s"], target, why=f"per-event work in the consumer, not the broker (raw consume "
                         f"{consumers.get('raw_per_s') or 0:,.0f}/s on the same topic); {PROFILE_HINT}"))
            )  # fmt: skip
    return rows


def _min_cpu(runs: list[dict[str, Any]]) -> float | None:
    return min(
        (x["service_cpu_ms_per_request"] for x in runs if x.get("service_cpu_ms_per_request")), default=None
    )


def _ladder_rows(i: dict[str, Any], postgres: dict[str, Any] | None) -> list[tuple[str, str, str, str]]:
    """The complaints intake's ladder: the rate it held, its p99 at 500 req/s, its memory."""
    at500 = next((x for x in i["runs"] if x["rate"] == 500), None)
    cpu = _min_cpu(i["runs"])
    ratio = i["highest_held_rps"] / postgres["per_s"] if postgres and postgres["per_s"] else None
    stopped = (
        f"not reached (the ladder stopped at {i['runs'][-1]['rate']:.0f} req/s)" if i["runs"] else "not run"
    )
    return [
        ("POST /complaints highest rate held", f"{i['highest_held_rps']:,} req/s", f"≥ {HELD_TARGET:,}/s",
         verdict(i["highest_held_rps"], HELD_TARGET, why=_cpu_bound(cpu))),
        ("Held rate / raw PostgreSQL tx rate", f"{ratio:.2f}" if ratio else "—", "—", ""),
        ("Complaints service CPU per request", f"{cpu:.2f} ms" if cpu else "—", "—", ""),
        ("p99 at 500 req/s", ms(at500["p99_ms"]) if at500 else stopped, f"≤ {P99_AT_500_TARGET} ms",
         verdict(at500["p99_ms"] if at500 else None, P99_AT_500_TARGET, higher_is_better=False,
                 why=_cpu_bound(cpu), unmeasured_is_missed=True)),
        ("Complaints service RSS idle / peak", f"{i['rss_idle_mb']:.0f} / {i['rss_peak_mb']:.0f} MB",
         f"≤ {MEMORY_BUDGET_MB} MB", verdict(i["rss_peak_mb"], MEMORY_BUDGET_MB, higher_is_better=False,
                                             why="over the memory budget")),
    ]  # fmt: skip


def _rss_seen(found: dict[str, Any]) -> list[tuple[str, float]]:
    """(where, MB) of every service process measured in one broker's figures."""
    i, consumers, e2e = found.get("intake"), found.get("consumers"), found.get("end_to_end")
    rss = [("complaints (intake)", i["rss_peak_mb"])] if i else []
    rss += [(f"{n} (intake)", o["rss_peak_mb"]) for n, o in (found.get("intake_other") or {}).items()]
    rss += [(f"{n} (consuming)", consumers[n]["rss_mb"]) for n in CONSUMER_TARGETS] if consumers else []
    rss += [(f"{n} (end to end)", v) for n, v in (e2e or {}).get("rss_mb", {}).items()]
    rss += [("health (rush)", found["rush"]["rss_peak_mb"])] if found.get("rush") else []
    rss += [(f"{n} (overload)", o["rss_peak_mb"]) for n, o in (found.get("overload") or {}).items()]
    return rss


def cost_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Each intake endpoint's service CPU per request as a multiple of the reference's
    (bench/reference.py), both at the reference's rate in the same run."""
    ref = (results.get("reference") or {}).get("runs") or []
    if not ref or not ref[0].get("service_cpu_ms_per_request"):
        return []
    rate, base = ref[0]["rate"], ref[0]["service_cpu_ms_per_request"]
    rows = []
    for endpoint, runs in _intake_runs(results):
        cpu = next((x.get("service_cpu_ms_per_request") for x in runs if x["rate"] == rate), None)
        ratio = cpu / base if cpu else None
        why = (
            (
                f"{cpu - base:.2f} ms more per request than the reference: admission control, validation, "
                f"the domain, sealing, the outbox row and the relay in the process; {PROFILE_HINT}"
            )
            if cpu
            else ""
        )
        rows.append(
            (f"{endpoint} service CPU per request / the reference's",
             f"{ratio:.1f}× ({cpu:.2f} ms / {base:.2f} ms at {rate:.0f} req/s)" if ratio else "not measured",
             f"≤ {COST_TARGET:.0f}×", verdict(ratio, COST_TARGET, higher_is_better=False, why=why))
        )  # fmt: skip
    return rows


def _intake_runs(results: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """(endpoint, runs) of every intake endpoint measured."""
    found = [("POST /complaints", results["intake"]["runs"])] if results.get("intake") else []
    return found + [(o["endpoint"], o["runs"]) for o in (results.get("intake_other") or {}).values()]


def phase_lines(results: dict[str, Any]) -> list[str]:
    """How long each phase took, and the whole run."""
    phases = results.get("phase_seconds") or {}
    return [
        "## Wall time per phase",
        "",
        "| phase | seconds |",
        "|---|---|",
        *[f"| {phase} | {seconds:.0f} |" for phase, seconds in phases.items()],
        f"| whole run | {results.get('total_seconds', 0):.0f} |",
        "",
    ]


def write_report(results: dict[str, Any], out: Path = RESULTS) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2, default=str))
    growth_points = results.get("growth") or {"intake": [], "integration": []}
    lines = [
        f"# Benchmark results ({results['profile']}, {results['started']})",
        "",
        f"Machine: {results['machine']}. Runtime: {results['infrastructure']}. "
        f"Whole run: {results.get('total_seconds', 0):.0f} s.",
        "",
        "| measure | result | target | verdict |",
        "|---|---|---|---|",
        *[f"| {a} | {b_} | {c} | {d} |" for a, b_, c, d in summary_rows(results)],
        "",
        *broker_lines(results),
        "## HTTP intake (open loop, latency from the scheduled send time)",
        "",
        "| endpoint | offered req/s | achieved req/s | p50 | p99 | p99.9 | errors | service CPU per request |",
        "|---|---|---|---|---|---|---|---|",
        *[
            f"| {endpoint} | {x['rate']:.0f} | {x['achieved_rps']:.0f} | {ms(x['p50_ms'])} | {ms(x['p99_ms'])} | "
            f"{ms(x['p999_ms'])} | {x['errors']} | {ms(x.get('service_cpu_ms_per_request'))} |"
            for endpoint, runs in [
                *[
                    (f"{endpoint}{label}", runs)
                    for found, label in _by_broker(results)
                    for endpoint, runs in _intake_runs(found)
                ],
                *[(f"reference: {r['endpoint']}", r["runs"]) for r in [results.get("reference")] if r],
            ]
            for x in runs
        ],
        "",
        "## Growth (rows already in the tables)",
        "",
        "| rows | intake p50 | intake p99 | intake errors | integration view events/s |",
        "|---|---|---|---|---|",
        *[
            f"| {g['rows']:,} | {ms(g['p50_ms'])} | {ms(g['p99_ms'])} | {g['errors']} | {c['per_s']:,.0f} |"
            for g, c in zip(growth_points["intake"], growth_points["integration"], strict=False)
        ],
        "",
        f"Intake at {growth_points['intake'][0]['rate'] if growth_points['intake'] else '—'} req/s; "
        "integration view rate over the first events of the same pre-loaded topic.",
        "",
        *hop_lines(results),
        *[
            line
            for found, label in _by_broker(results)
            if found.get("rush")
            for line in _rush_section(found, label)
        ],
        *phase_lines(results),
        *_profile_lines(results.get("profiles") or {}),
        *results.get("notes", []),
    ]
    (out / "latest.md").write_text("\n".join(lines) + "\n")
    _plots(results, out)


README = ROOT / "README.md"
README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"


def update_readme(results: dict[str, Any], readme: Path = README) -> None:
    """Put the headline table of a full run between the README's bench markers, so the
    README always shows the latest figures against the targets, missed ones included."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return
    table = [
        f"Latest full run: {results['started']} on {results['machine']} "
        f"({results.get('total_seconds', 0):.0f} s). Details, intake ladders and growth: "
        "[bench/results/latest.md](bench/results/latest.md); what the figures mean and why the "
        "missed ones are missed: [docs/capacity.md](docs/capacity.md).",
        "",
        "| measure | result | target | verdict |",
        "|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in summary_rows(results)],
    ]
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(head + README_START + "\n" + "\n".join(table) + "\n" + README_END + tail)


def _rush_section(found: dict[str, Any], label: str) -> list[str]:
    """bench/rush.py's section, its heading naming the broker when there are several."""
    heading, *rest = rush_lines(found["rush"])
    return [heading + label, *rest]


def _profile_lines(profiles: dict[str, dict[str, list[tuple[str, float]]]]) -> list[str]:
    """With --profile: where each sampled process spent its time (py-spy)."""
    lines: list[str] = []
    for name, summary in profiles.items():
        lines += [f"### Profile: {name}", "", "| share of samples | frame (self) |", "|---|---|"]
        lines += [f"| {share:.1%} | `{frame}` |" for frame, share in summary["self"][:8]]
        lines.append("")
    return ["## Profiles (py-spy)", "", *lines] if lines else []


def _plots(results: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = results["intake"]["runs"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9")):
        ax.plot([r["rate"] for r in runs], [r[key] for r in runs], marker="o", label=label)
    ax.axhline(50, color="grey", linestyle="--", linewidth=0.8, label="p99 target at 500 req/s")
    ax.set(
        xlabel="offered load (req/s)",
        ylabel="latency (ms)",
        title="POST /complaints, open loop",
        yscale="log",
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "intake_latency.png", dpi=100)
    plt.close(fig)

    growth_points = results.get("growth") or {}
    if growth_points.get("intake"):
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
        rows = [g["rows"] for g in growth_points["intake"]]
        left.plot(rows, [g["p50_ms"] for g in growth_points["intake"]], marker="o", label="p50")
        left.plot(rows, [g["p99_ms"] for g in growth_points["intake"]], marker="o", label="p99")
        left.set(xscale="log", xlabel="complaints already stored", ylabel="latency (ms)",
                 title=f"Intake at {growth_points['intake'][0]['rate']} req/s")  # fmt: skip
        left.legend()
        right.plot(rows, [c["per_s"] for c in growth_points["integration"]], marker="o", color="#2a7")
        right.set(xscale="log", xlabel="items and history rows already stored", ylabel="events/s",
                  title="Integration view consumer", ylim=(0, None))  # fmt: skip
        fig.tight_layout()
        fig.savefig(out / "growth.png", dpi=100)
        plt.close(fig)

    b = results["baselines"]
    fig, ax = plt.subplots(figsize=(7, 4))
    names = ["raw produce", "relay drain", "raw consume"]
    values = [b["produce"]["per_s"], results["relay"]["per_s"], b["consume"]["per_s"]]
    consumers = results.get("consumers")
    if consumers:
        names += ["integration view", "notifications"]
        values += [consumers["integration"]["per_s"], consumers["notifications"]["per_s"]]
    ax.bar(names, values, color=["#888", "#2a7", "#888", "#27a", "#27a"][: len(names)])
    ax.set(ylabel="events/s", title="Event paths vs the raw broker", yscale="log")
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    fig.savefig(out / "relay_vs_raw.png", dpi=100)
    plt.close(fig)
