"""At which scale a run measures (full, quick: a `Scale`) and where it writes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PROFILES = RESULTS / "profiles"
# What a miss the run's own figures cannot explain points to: a profiled run's report.
PROFILE_HINT = (
    "where the time goes: bench/results/profiled/latest.md (make bench PROFILE=1), docs/capacity.md"
)


@dataclass(frozen=True)
class Scale:
    """How much a run measures: how many events, which rates, how long."""

    name: str
    events: int  # events for broker baselines and the relay drain
    pg_seconds: float
    rates: tuple[int, ...]
    rate_seconds: float
    growth_rows: tuple[int, ...]
    growth_rate: int
    e2e_rate: int  # end to end when the intake was not measured (half its held rate when it was)
    e2e_seconds: float
    e2e_rate_cap: int | None = None  # the most end to end is offered
    consumer_window: float = 30.0  # longest a consumer rate is measured for
    consumer_events: int = 10_000  # pre-loaded for the consumers (and growth's view)
    other_rates: tuple[int, ...] = (100, 200, 300, 500, 1000)  # permits and health intake
    other_seconds: float = 5
    # The reference (bench/reference.py) and every endpoint's cost at this rate.
    cost_rate: int = 100
    growth_events: int = 20_000
    growth_window: float = 15.0
    # The booking-window rush (bench/rush.py): citizens booking 100 places within seconds.
    rush_citizens: int = 5000
    rush_seconds: float = 10
    overload_seconds: float = 5  # each intake endpoint offered twice its held rate
    portal_seconds: float = 10  # each citizens' page at 100 req/s (bench/portal_pages.py)


FULL = Scale(
    "full",
    # The figures settle well before these sizes; what each phase took is in latest.md
    # ("Wall time per phase"), and the whole run is to stay under 10 minutes with every
    # broker-dependent phase on both brokers (665 s with 100,000 events, 10 s of raw
    # PostgreSQL, growth at 10,000 and 300,000 rows, 10 s per portal page on 2026-12-07).
    events=50_000,
    pg_seconds=5,
    rates=(100, 200, 300, 500, 1000, 1500, 2000),
    rate_seconds=10,
    # 300,000 complaints are twenty years of Purworejo's (loading 1,000,000 took ~110 s and
    # showed the same figures); empty tables are the intake phase's own 100 req/s step.
    growth_rows=(300_000,),
    growth_rate=100,
    e2e_rate=200,
    e2e_seconds=60,
    consumer_window=15,
    # The fastest consumer (~11,000 events/s on a quiet machine) takes about 3 s of it;
    # each broker's topic is pre-loaded and sealed event by event.
    consumer_events=30_000,
    overload_seconds=4,
    portal_seconds=5,
)
# A few minutes: complaints only, no growth steps; both brokers.
QUICK = Scale(
    "quick",
    events=10_000,
    pg_seconds=3,
    rates=(100, 300),
    rate_seconds=3,
    growth_rows=(),
    growth_rate=100,
    e2e_rate=50,
    e2e_seconds=5,
    e2e_rate_cap=50,
    consumer_window=10,
    other_rates=(100,),
    other_seconds=3,
    rush_citizens=2000,
    rush_seconds=4,
    overload_seconds=4,
    portal_seconds=4,
)
