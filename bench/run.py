"""`make bench` / `make bench-quick`: throughput, latency and memory of every path, side
by side with the raw broker and raw PostgreSQL measured in the same run.

Everything runs on the embedded runtime (or explicit settings) started here on free
ports. On the embedded runtime the phases whose figures depend on the broker
(bench.brokers.BROKER_PHASES) run on Tansu and on Apache Kafka, the latter started
beside it. Results: bench/results/latest.json, latest.md (the table the README links)
and PNG plots. Benchmarks report numbers; a missed target is reported as missed, with
its reason, never turned into a test failure.

This module is the command line and the order of the phases; each phase is a module of
its own (bench/baselines.py, relay.py, intake.py, end_to_end.py, citizen_codes.py,
consumers.py, growth.py, rush.py, portal_pages.py), the report is bench/report.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench import profile as profiler
from bench import rush
from bench.baselines import broker_baselines, raw_postgres
from bench.brokers import BROKER_LABELS, BROKER_PHASES, broker_axis
from bench.citizen_codes import citizen_codes
from bench.consumers import consumer_rates
from bench.end_to_end import end_to_end, hop_lines
from bench.events import preload_topic
from bench.growth import growth
from bench.intake import HEALTH_INTAKE, PERMITS_INTAKE, REFERENCE_INTAKE, intake
from bench.portal_pages import portal_pages, portal_rows
from bench.profile import Profiler, profiling
from bench.relay import relay_drain
from bench.report import cost_rows, phase_lines, update_readme, write_report
from bench.services import fresh_database
from bench.settings import FULL, PROFILES, QUICK, RESULTS, Scale
from shared.runtime.select import Infrastructure, start_infrastructure
from shared.runtime.topology import topics

PHASES = (
    "baselines", "relay", "intake", "end_to_end", "citizen_codes", "consumers", "growth", "rush", "overload",
    "portal_pages",
)  # fmt: skip


def _print_rows(rows: list[tuple[str, str, str, str]]) -> None:
    for row in rows:
        print("  " + " | ".join(row), flush=True)


@dataclass
class Run:
    """One run's settings and what it found so far: the runtime's broker first in
    `brokers`, each broker's figures in `results["brokers"][kind]`, the runtime broker's
    also at the top of `results` (the plots and the single-broker tables read them)."""

    infra: Infrastructure
    scale: Scale
    held_rate: float | None
    results: dict[str, Any]
    brokers: dict[str, Infrastructure] = field(default_factory=dict)

    @property
    def per_broker(self) -> dict[str, dict[str, Any]]:
        return self.results["brokers"]

    def keep(self, phase: str, found: dict[str, Any]) -> None:
        """`found`: each broker's figure of `phase`; the runtime broker's is also the run's."""
        for kind, figure in found.items():
            self.per_broker[kind][phase] = figure
        self.results[phase] = found[next(iter(self.brokers))]

    @contextlib.contextmanager
    def on(self, kind: str) -> Iterator[None]:
        """Profiles taken inside are named after broker `kind` when there are several."""
        scope = kind if len(self.brokers) > 1 else ""
        with profiling(replace(profiler.active(), scope=scope)):
            yield

    @contextlib.contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """The phase's wall time; a phase that fails is reported as failed (the report
        says so and the run exits non-zero) without losing the other phases' figures."""
        started = time.perf_counter()
        try:
            yield
        except Exception as exc:
            traceback.print_exc()
            self.results["failed"][phase] = f"{type(exc).__name__}: {exc}"
        finally:
            seconds = self.results["phase_seconds"][phase] = time.perf_counter() - started
            print(f"  ({phase}: {seconds:.0f} s)", flush=True)

    async def baselines(self) -> None:
        print("baselines…", flush=True)
        found = {}
        for kind, on in self.brokers.items():
            found[kind] = await broker_baselines(on, self.scale.events)
            print(f"  {BROKER_LABELS[kind]}: produce {found[kind]['produce']['per_s']:,.0f}/s "
                  f"consume {found[kind]['consume']['per_s']:,.0f}/s", flush=True)  # fmt: skip
        postgres = await raw_postgres(await fresh_database(self.infra), self.scale.pg_seconds)
        self.keep("baselines", found)
        self.results["baselines"] = {**self.results["baselines"], "postgres": postgres}
        print(f"  pg {postgres['per_s']:,.0f} tx/s", flush=True)

    async def relay(self) -> None:
        print("outbox relay…", flush=True)
        found = {}
        for kind, on in self.brokers.items():
            with self.on(kind):
                relay = found[kind] = await relay_drain(on, self.scale.events)
            relay["ratio_to_raw_produce"] = (
                relay["per_s"] / self.per_broker[kind]["baselines"]["produce"]["per_s"]
            )
            print(f"  {BROKER_LABELS[kind]}: relay {relay['per_s']:,.0f}/s "
                  f"({relay['ratio_to_raw_produce']:.2f} of raw produce)", flush=True)  # fmt: skip
        self.keep("relay", found)

    async def intake(self) -> None:
        """Every endpoint's ladder on the runtime's broker; on the others each endpoint at
        the reference's rate only (its cost there: the relay in the process publishes to
        that broker), which is what differs between brokers at these rates."""
        print("HTTP intake…", flush=True)
        scale, raw_pg = self.scale, self.results["baselines"]["postgres"]["per_s"]
        # The reference stores a row and publishes nothing: measured once, for every broker.
        reference = await intake(self.infra, (scale.cost_rate,), scale.rate_seconds, raw_pg, REFERENCE_INTAKE)
        ladders, others = {}, {}
        for n, (kind, on) in enumerate(self.brokers.items()):
            if n:
                print(f"  on {BROKER_LABELS[kind]}, at {scale.cost_rate} req/s:", flush=True)
            rates, other_rates = (
                (scale.rates, scale.other_rates) if not n else ((scale.cost_rate,), (scale.cost_rate,))
            )
            with self.on(kind):
                ladders[kind] = await intake(on, rates, scale.rate_seconds, raw_pg)
                others[kind] = {
                    target.service: await intake(on, other_rates, scale.other_seconds, raw_pg, target)
                    for target in (PERMITS_INTAKE, HEALTH_INTAKE)
                }
            if n:  # the report shows no held rate for these
                for found in (ladders[kind], *others[kind].values()):
                    found["cost_only"] = True
        self.keep("reference", dict.fromkeys(self.brokers, reference))
        self.keep("intake", ladders)
        self.keep("intake_other", others)
        for kind in self.brokers:
            print(f"  {BROKER_LABELS[kind]}:", flush=True)
            _print_rows(cost_rows(self.per_broker[kind]))

    def e2e_rate(self) -> int:
        """Half the highest rate the complaints intake held alone (the two consumers, the
        SMTP sink and the generator share the machine with it here; above that the
        figure measures a queue, not the pipeline's latency); the profile's rate when the
        intake was not measured, and never more than the profile's cap."""
        held = (self.results.get("intake") or {}).get("highest_held_rps")
        half = max(10, int(held) // 2) if held else self.scale.e2e_rate
        return min(half, self.scale.e2e_rate_cap) if self.scale.e2e_rate_cap else half

    async def end_to_end(self) -> None:
        rate = self.e2e_rate()
        print(f"end to end at {rate} req/s for {self.scale.e2e_seconds:.0f} s…", flush=True)
        found = {}
        for kind, on in self.brokers.items():
            with self.on(kind):
                e2e = found[kind] = await end_to_end(on, rate, self.scale.e2e_seconds)
            print(f"  {BROKER_LABELS[kind]}: view p99 {e2e['view'].get('p99_ms', float('nan')):.0f} ms, "
                  f"email p99 {e2e['email'].get('p99_ms', float('nan')):.0f} ms", flush=True)  # fmt: skip
        self.keep("end_to_end", found)
        print("\n".join(hop_lines(self.results)), flush=True)

    async def citizen_codes(self) -> None:
        print("one-time codes, request to arrival…", flush=True)
        codes = self.results["citizen_codes"] = await citizen_codes(self.infra)
        print(f"  email p99 {codes['email'].get('p99_ms', float('nan')):.0f} ms, "
              f"WhatsApp p99 {codes['whatsapp'].get('p99_ms', float('nan')):.0f} ms", flush=True)  # fmt: skip

    async def consumers(self) -> str | None:
        """Each broker's consumers on a topic pre-loaded there; the runtime broker's topic
        (for growth)."""
        found, topic = {}, None
        for kind, on in self.brokers.items():
            print(f"  {BROKER_LABELS[kind]}: pre-loading {self.scale.consumer_events:,} events…", flush=True)
            loaded = await preload_topic(on, self.scale.consumer_events)
            topic = topic or loaded
            with self.on(kind):
                found[kind] = await consumer_rates(
                    on, loaded, self.scale.consumer_events, self.scale.consumer_window
                )
        self.keep("consumers", found)
        return topic

    async def growth(self, topic: str | None) -> None:
        if topic is None:
            print(f"pre-loading {self.scale.consumer_events:,} events…", flush=True)
            topic = await preload_topic(self.infra, self.scale.consumer_events)
        print("growth…", flush=True)
        self.results["growth"] = await growth(self.infra, self.scale, topic)

    async def rush(self) -> None:
        """The booking-window rush on each broker."""
        scale = self.scale
        print(f"booking rush: {scale.rush_citizens:,} citizens in {scale.rush_seconds:.0f} s…", flush=True)
        found = {}
        for kind, on in self.brokers.items():
            print(f"  {BROKER_LABELS[kind]}:", flush=True)
            with self.on(kind):
                found[kind] = await rush.rush(on, scale.rush_citizens, scale.rush_seconds)
            _print_rows(rush.rush_rows(found[kind]))
        self.keep("rush", found)

    async def overload(self) -> None:
        """Each intake endpoint offered twice the rate it held on the runtime's broker, on
        each broker (the same offered load on both)."""
        held = rush.held_rates(self.results, self.held_rate)
        print(f"overload: twice the held rates {held}…", flush=True)
        found = {}
        for kind, on in self.brokers.items():
            print(f"  {BROKER_LABELS[kind]}:", flush=True)
            with self.on(kind):
                found[kind] = await rush.overload(on, held, self.scale.overload_seconds)
            _print_rows(rush.overload_rows(found[kind]))
        self.keep("overload", found)

    async def portal_pages(self) -> None:
        print("portal pages: tracking and Layanan saya…", flush=True)
        self.results["portal_pages"] = await portal_pages(self.infra, self.scale.portal_seconds)
        _print_rows(portal_rows(self.results["portal_pages"]))


async def main_async(scale: Scale, only: set[str], held_rate: float | None = None) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="sinergi-bench-"))
    results: dict[str, Any] = {
        "profile": scale.name,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}, "
        f"load average at start {os.getloadavg()[0]:.1f}",
        "notes": [
            "Load generator, services, broker and PostgreSQL share the same machine, so the",
            "generator's own CPU use is part of every figure.",
        ],
        "phase_seconds": {},
        "failed": {},
    }
    with (
        start_infrastructure(["postgres_bench"], topics(), work_dir=work, durable=True) as infra,
        contextlib.ExitStack() as others,
    ):
        results["infrastructure"] = (
            f"{infra.kind} (broker {infra.kafka_kind or infra.kind}, "
            f"PostgreSQL {infra.postgres_kind or infra.kind})"
        )
        run = Run(infra, scale, held_rate, results)
        # The intake needs the baselines (its ratio to raw PostgreSQL), which start the axis.
        if only & BROKER_PHASES:
            with run.timed("brokers started"):
                run.brokers = await broker_axis(infra, work, others)
        results["brokers"] = {kind: {"label": BROKER_LABELS[kind]} for kind in run.brokers}
        if only & {"baselines", "relay", "intake"}:
            with run.timed("baselines"):
                await run.baselines()
        for phase in ("relay", "intake", "end_to_end", "citizen_codes"):
            if phase in only:
                with run.timed(phase):
                    await getattr(run, phase)()
        topic = None
        if "consumers" in only:
            with run.timed("consumers"):
                topic = await run.consumers()
        if "growth" in only and scale.growth_rows:
            with run.timed("growth"):
                await run.growth(topic)
        for phase in ("rush", "overload", "portal_pages"):
            if phase in only:
                with run.timed(phase):
                    await getattr(run, phase)()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few minutes")
    parser.add_argument(
        "--only",
        action="append",
        choices=PHASES,
        help="run only these phases (repeatable); the report is then printed, not saved",
    )
    parser.add_argument("--profile", action="store_true", help="sample the services under load with py-spy")
    parser.add_argument(
        "--held-rate",
        type=float,
        help="overload alone: the held rate of an endpoint neither this run nor bench/results/latest.json measured",
    )
    args = parser.parse_args()
    scale = QUICK if args.quick else FULL
    started = time.perf_counter()
    with profiling(Profiler(enabled=args.profile, directory=PROFILES)) as sampling:
        results = asyncio.run(main_async(scale, set(args.only or PHASES), args.held_rate))
    results["total_seconds"] = time.perf_counter() - started
    results["profiles"] = sampling.summaries
    print("\n".join(phase_lines(results)))
    if args.only:
        shown = {*PHASES, "brokers", "failed"}
        print(json.dumps({k: v for k, v in results.items() if k in shown}, indent=2, default=str))
        sys.exit(1 if results["failed"] else 0)
    # A quick run never replaces the full run's figures that the README shows, nor does a
    # profiled one (py-spy's sampling takes CPU from the 2 cores it measures): each has
    # its own folder, the profiled one read for why a target is missed.
    out = RESULTS / "quick" if scale is not FULL else RESULTS / "profiled" if args.profile else RESULTS
    write_report(results, out)
    if scale is FULL and not args.profile:
        update_readme(results)
    print((out / "latest.md").read_text())
    print(f"total {results['total_seconds']:.0f} s; results in {out}")
    if results["failed"]:
        sys.exit(f"failed phases: {', '.join(results['failed'])}")


if __name__ == "__main__":
    main()
