"""Services started as their own processes (as `make run` starts them), sampled for CPU,
RSS and, with --profile, py-spy; their databases."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid

import asyncpg
import httpx
import psutil

from bench import profile as profiler
from bench.settings import ROOT
from shared.runtime.embedded import create_databases
from shared.runtime.select import Infrastructure, database_url_for

# The load generator is one client address filing for one contact: the abuse limits (429
# after 30 filings an hour, two unsolicited messages an hour to an unverified contact)
# would measure themselves. They are lifted here; tests/integration/test_abuse_limits.py
# and test_citizen_sessions.py measure them.
WITHOUT_ABUSE_LIMITS = {
    "SINERGI_RATE_LIMIT_FACTOR": "100000",
    "NOTIFICATIONS_UNSOLICITED_PER_HOUR": "1000000",
    # The rush's probe contact books again after each phase (tests/integration/test_health_bookings.py
    # measures what a contact may hold).
    "HEALTH_ACTIVE_BOOKINGS_PER_CONTACT": "100000000",
}


class ServiceProcess:
    """A service started as its own process (as `make run` does), with RSS sampling."""

    def __init__(self, module: str, env: dict[str, str], port: int) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=ROOT,
            env={**os.environ, **WITHOUT_ABUSE_LIMITS, **env, "SINERGI_LOG_LEVEL": "WARNING"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.peak_rss = 0

    async def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                try:
                    if (await client.get(f"http://127.0.0.1:{self.port}/ready")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError(f"service on {self.port} did not become ready")

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.proc.pid).cpu_times()
        return times.user + times.system

    def rss_mb(self) -> float:
        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    async def sample_rss(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.peak_rss = max(self.peak_rss, psutil.Process(self.proc.pid).memory_info().rss)
            await asyncio.sleep(0.2)

    async def profile(self, name: str, seconds: float) -> None:
        """With --profile: sample this process with py-spy and print where it spends
        its time (folded stacks kept in bench/results/profiles/)."""
        await profiler.active().sample(self.proc.pid, name, seconds)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def inbox_count(url: str, consumer: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SELECT count(*) FROM inbox WHERE consumer = $1", consumer)
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await conn.close()


def consumer_env(
    name: str, group: str, topic: str, url: str, port: int, extra: dict[str, str]
) -> dict[str, str]:
    prefix = name.upper()
    topics_value = json.dumps([topic]) if name == "notifications" else topic
    return {
        f"{prefix}_DATABASE_URL": url,
        f"{prefix}_PORT": str(port),
        f"{prefix}_CONSUMER_GROUP": group,
        f"{prefix}_TOPICS": topics_value,
        **extra,
    }


async def fetch_rows(url: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


async def fresh_database(infra: Infrastructure) -> str:
    admin = infra.admin_database_url or next(iter(infra.database_urls.values()))
    name = f"bench_{uuid.uuid4().hex[:10]}"
    await create_databases(admin, [name])
    return database_url_for(admin, name)
