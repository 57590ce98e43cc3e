"""The benchmark's own parts, so `make bench` does not fail at its end: the open-loop
generator against a real HTTP server, the report and README table from a results
document, and the py-spy summary."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import web

from bench import loadgen
from bench.figures import verdict
from bench.profile import render, summarise
from bench.report import README_END, README_START, summary_rows, update_readme, write_report


async def test_open_loop_generator_sends_at_the_rate_and_records_answers() -> None:
    seen: list[dict[str, Any]] = []

    async def create(request: web.Request) -> web.Response:
        seen.append(await request.json())
        code = f"ADU-{len(seen):04d}"
        await asyncio.sleep(0.01)
        return web.json_response({"tracking_code": code}, status=201)

    app = web.Application()
    app.router.add_post("/complaints", create)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        bodies = [json.dumps({"n": i}).encode() for i in range(3)]
        result = await loadgen.run(
            f"http://127.0.0.1:{port}/complaints", 100, 1.0, bodies, 5.0, record="tracking_code"
        )
    finally:
        await runner.cleanup()
    assert result["sent"] == 100 and result["ok"] == 100 and result["errors"] == 0
    # Bodies in turn: each of the three as often as the others, give or take one (the
    # server sees them in the order they arrive, which an open loop does not fix).
    assert sorted(Counter(b["n"] for b in seen).values()) == [33, 33, 34]
    assert len(result["answered"]) == 100  # type: ignore[arg-type]
    # Latency is measured from the scheduled time: at least the server's 10 ms.
    assert 10 <= result["p50_ms"] < 1000  # type: ignore[operator]


def _results() -> dict[str, Any]:
    """A full run's results on two brokers: Tansu (the runtime's, every phase) and Apache
    Kafka (the broker-dependent figures)."""
    run = {"rate": 100, "achieved_rps": 99.0, "p50_ms": 8.0, "p99_ms": 40.0, "p999_ms": 60.0, "errors": 0,
           "service_cpu_ms_per_request": 4.0}  # fmt: skip
    slow = {**run, "rate": 500, "achieved_rps": 220.0, "p99_ms": 6000.0, "service_cpu_ms_per_request": 3.9}
    intake = {"endpoint": "POST /complaints", "runs": [run, slow], "highest_held_rps": 100,
              "ratio_to_raw_pg": 0.1, "rss_idle_mb": 90.0, "rss_peak_mb": 120.0}  # fmt: skip
    percentiles = {"n": 10, "p50_ms": 50.0, "p99_ms": 90.0, "max_ms": 95.0, "missing": 0}
    tansu = {
        "label": "Tansu",
        "baselines": {"produce": {"per_s": 16000.0}, "consume": {"per_s": 100000.0}},
        "relay": {"per_s": 15000.0, "ratio_to_raw_produce": 0.94},
        "intake": intake,
        "intake_other": {"permits": {**intake, "endpoint": "POST /applications"}},
        "end_to_end": {"rate": 200, "seconds": 60, "view": percentiles, "email": {**percentiles, "missing": 3},
                       "rss_mb": {"complaints": 100}},
        "consumers": {"events": 100000, "raw_per_s": 90000.0, "integration": {"per_s": 3000.0, "rss_mb": 110.0},
                      "notifications": {"per_s": 1000.0, "rss_mb": 125.0}},
    }  # fmt: skip
    kafka = {
        "label": "Apache Kafka",
        "intake": {**intake, "runs": [run], "cost_only": True},
        "baselines": {"produce": {"per_s": 8000.0}, "consume": {"per_s": 50000.0}},
        "relay": {"per_s": 6000.0, "ratio_to_raw_produce": 0.75},
        "end_to_end": {"rate": 200, "seconds": 60, "view": {**percentiles, "p99_ms": 45.0}, "email": {"n": 0}},
    }  # fmt: skip
    return {
        "profile": "full", "started": "2026-11-28T12:00:00+00:00", "machine": "test", "infrastructure": "embedded",
        "total_seconds": 500, "phase_seconds": {"baselines": 20.0, "intake": 120.0},
        **{k: v for k, v in tansu.items() if k != "label"},
        "baselines": {**tansu["baselines"], "postgres": {"per_s": 1000.0}},
        "growth": {"intake": [{**run, "rows": 10_000}], "integration": [{"rows": 10_000, "per_s": 2900.0}]},
        "profiles": {"intake-complaints-500": {"samples": 10, "self": [("frame (x.py:1)", 0.5)], "inclusive": []}},
        "brokers": {"tansu": tansu, "kafka": kafka},
        "notes": [],
    }  # fmt: skip


def test_report_and_readme_table(tmp_path: Path) -> None:
    results = _results()
    rows = {measure: (result, judged) for measure, result, _, judged in summary_rows(results)}
    assert rows["Outbox relay drain — Tansu"] == ("15,000 events/s", "met")
    assert rows["Outbox relay drain — Apache Kafka"][1].startswith("MISSED: ")
    assert rows["p99 at 500 req/s — Tansu"][1].startswith(
        "MISSED: CPU-bound: 3.90 ms of service CPU per request caps"
    )
    assert rows["POST /complaints highest rate held — Tansu"][0] == "100 req/s"
    assert "3 not arrived" in rows["201 → email in the SMTP sink, p99 (200 req/s for 60 s) — Tansu"][0]
    # Each broker's figures, none of one broker's under the other's name; a broker where
    # the endpoint ran at the reference's rate only shows no held rate.
    assert "POST /complaints highest rate held — Apache Kafka" not in rows
    # A ladder that stopped at its first step still reports what it held.
    results["brokers"]["tansu"]["intake"] = {**results["intake"], "runs": results["intake"]["runs"][1:],
                                             "highest_held_rps": 0}  # fmt: skip
    held = {m: (r, v) for m, r, _, v in summary_rows(results)}["POST /complaints highest rate held — Tansu"]
    assert held[0] == "0 req/s" and held[1].startswith("MISSED: ")
    results = _results()

    write_report(results, tmp_path)
    report = (tmp_path / "latest.md").read_text()
    assert "| POST /applications — Tansu | 100 |" in report and "### Profile: intake-complaints-500" in report
    # Each broker's figure, and Apache Kafka's over Tansu's; an unmeasured one is shown as such.
    assert "| measure | Tansu | Apache Kafka | Kafka / Tansu |" in report
    assert "| Raw produce (msg/s) | 16,000/s | 8,000/s | 0.50 |" in report
    assert "| Outbox relay drain (events/s) | 15,000/s | 6,000/s | 0.40 |" in report
    assert "| 201 → integration view, p99 | 90.0 ms | 45.0 ms | 0.50 |" in report
    assert "| 201 → email in the SMTP sink, p99 | 90.0 ms | — | — |" in report
    assert "End to end at 200 req/s for 60 s." in report
    assert "| whole run | 500 |" in report and "| intake | 120 |" in report
    assert {p.name for p in tmp_path.glob("*.png")} == {
        "intake_latency.png",
        "growth.png",
        "relay_vs_raw.png",
    }

    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{README_START}\nold table\n{README_END}\n\n## Next\n")
    update_readme(results, readme)
    text = readme.read_text()
    assert (
        "old table" not in text
        and "| Outbox relay drain — Tansu | 15,000 events/s | ≥ 15,000/s | met |" in text
    )
    assert text.startswith("# Title") and text.endswith("## Next\n")


def test_cost_against_the_reference_hops_consumers_and_pages(tmp_path: Path) -> None:
    results = _results()
    reference = {"rate": 100, "achieved_rps": 100.0, "p50_ms": 2.0, "p99_ms": 5.0, "p999_ms": 6.0, "errors": 0,
                 "service_cpu_ms_per_request": 1.6}  # fmt: skip
    results["reference"] = results["brokers"]["tansu"]["reference"] = {
        "endpoint": "POST /reference",
        "runs": [reference],
    }
    results["intake_other"]["permits"] = {
        **results["intake"],
        "endpoint": "POST /applications",
        "runs": [{**results["intake"]["runs"][0], "service_cpu_ms_per_request": 3.0}],
    }
    hop = {"n": 10, "p50_ms": 10.0, "p99_ms": 30.0, "max_ms": 31.0}
    results["brokers"]["tansu"]["end_to_end"]["hops"] = {
        "view": [{"hop": "relay", **hop, "mean_ms": 5.0, "share": 0.25}, {"hop": "broker", **hop, "mean_ms": 15.0, "share": 0.75}],
    }  # fmt: skip
    results["consumers"]["integration"]["ratio_to_raw_consume"] = 0.03
    page = {
        "path": "/lacak?kode={code}",
        "p50_ms": 20.0,
        "p99_ms": 80.0,
        "errors": 0,
        "portal_cpu_ms_per_page": 2.0,
    }
    results["portal_pages"] = {
        "rate": 100,
        "tracking": page,
        "layanan": {**page, "path": "/layanan", "errors": 3},
    }

    rows = {measure: (result, judged) for measure, result, _, judged in summary_rows(results)}
    # At the reference's rate only: the complaints run at 500 req/s is not compared.
    result, judged = rows["POST /complaints service CPU per request / the reference's — Tansu"]
    assert result == "2.5× (4.00 ms / 1.60 ms at 100 req/s)"
    assert judged.startswith("MISSED: 2.40 ms more per request than the reference")
    assert rows["POST /applications service CPU per request / the reference's — Tansu"][1] == "met"
    assert "0.030 of raw consume" in rows["integration consumer, 100,000 pre-loaded events — Tansu"][0]
    assert rows["Portal tracking page (GET /lacak?kode={code}) at 100 req/s, p99"][1] == "met"
    assert rows["Portal Layanan saya (GET /layanan) at 100 req/s, p99"][1].startswith("MISSED: 3 errors")
    # The view's p99 is met; were it not, the reason would name the hop with the largest share.
    assert rows["201 → integration view, p99 (200 req/s for 60 s) — Tansu"][1] == "met"

    write_report(results, tmp_path)
    report = (tmp_path / "latest.md").read_text()
    assert "| reference: POST /reference | 100 |" in report
    assert "## End to end, hop by hop (Tansu, 200 req/s for 60 s)" in report
    assert "| view | broker | 15.0 ms | 10.0 ms | 30.0 ms | 75% |" in report


def test_every_missed_row_says_why(tmp_path: Path) -> None:
    """Every MISSED verdict of the headline table carries its reason, whichever phase it
    comes from (a run where almost everything is missed)."""
    results = _results()
    tansu = results["brokers"]["tansu"]
    slow = {"n": 10, "p50_ms": 900.0, "p99_ms": 2000.0, "max_ms": 2100.0, "missing": 0}
    tansu["end_to_end"] = results["end_to_end"] = {
        "rate": 50, "seconds": 60, "view": slow, "email": slow, "rss_mb": {"complaints": 400},
        "hops": {"view": [{"hop": "broker", "share": 0.8}, {"hop": "relay", "share": 0.2}]},
    }  # fmt: skip
    tansu["reference"] = {"runs": [{"rate": 100, "service_cpu_ms_per_request": 0.5}]}
    results["citizen_codes"] = {"requests": 50, "email": slow, "whatsapp": slow}
    results["portal_pages"] = {
        "rate": 100,
        **{name: {"path": f"/{name}", "p50_ms": 150.0, "p99_ms": 300.0, "errors": 2, "statuses": {"503": 2},
                  "portal_cpu_ms_per_page": 3.0} for name in ("tracking", "layanan")},
    }  # fmt: skip
    probe = {"rate": 50, "baseline_p99_ms": 5.0, "normal_ms": 25.0, "during_p99_ms": 900.0,
             "window_p99_ms_after": [900.0] * 10, "recovered_s": None}  # fmt: skip
    tansu["rush"] = {"citizens": 5000, "seconds": 10, "places": 100, "booked": 90, "full": 10, "busy": 4000,
                     "busy_without_retry_after": 3, "other": {"500": 2}, "all": slow, "refused": slow,
                     "retries": 3000, "gave_up_busy": 5, "final": slow,
                     "rss_peak_mb": 400.0, "stored": 90, "published": 89, "stored_equals_published": False,
                     "probe": probe}  # fmt: skip
    tansu["overload"] = {"complaints": {"endpoint": "POST /complaints", "held_rps": 100, "offered_rps": 200,
                                        "seconds": 5, "accepted": 100, "accepted_rps": 50.0, "busy": 900,
                                        "other": {"500": 1}, "accepted_latency": slow, "refused_latency": slow,
                                        "rss_peak_mb": 400.0}}  # fmt: skip
    rows = summary_rows(results)
    missed = [(measure, judged) for measure, _, _, judged in rows if judged.startswith("MISSED")]
    assert len(missed) >= 15
    for measure, judged in missed:
        assert judged.startswith("MISSED: ") and judged.removeprefix("MISSED: ").strip(), measure
    assert dict(missed)["201 → integration view, p99 (50 req/s for 60 s) — Tansu"].startswith(
        "MISSED: 80% of the mean in 'broker'"
    )
    # And so in what is written: latest.md and the README's table.
    write_report(results, tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(f"{README_START}\n{README_END}\n")
    update_readme(results, readme)
    for written in (tmp_path / "latest.md", readme):
        verdicts = [
            line.rsplit(" | ", 1)[-1] for line in written.read_text().splitlines() if "| MISSED" in line
        ]
        assert len(verdicts) == len(missed) and all(v.startswith("MISSED: ") for v in verdicts)
    # The verdict itself cannot say MISSED without a reason.
    assert verdict(2.0, 1.0, higher_is_better=False, why="too slow") == "MISSED: too slow"


def test_profile_summary(tmp_path: Path) -> None:
    folded = tmp_path / "p.txt"
    folded.write_text(
        "main (services/x/app.py:1);handler (services/x/handlers.py:9);execute (asyncpg/c.py:3) 6\n"
        "main (services/x/app.py:1);json (json/encoder.py:2) 4\n"
    )
    summary = summarise(folded)
    assert summary["samples"] == 10
    assert summary["self"][0] == ("execute (asyncpg/c.py:3)", 0.6)
    assert dict(summary["inclusive"])["main (services/x/app.py:1)"] == 1.0
    assert "10 samples" in render(summary)
    # A window the process spent waiting holds no samples (py-spy leaves idle threads
    # out): the summary says so instead of printing empty lists.
    idle = tmp_path / "idle.txt"
    idle.write_text("")
    assert "no samples: the process was idle" in render(summarise(idle))
