"""What an operator reads on a running service's /metrics besides its own counters: the
process (memory, CPU, file descriptors, garbage collection), the database pool, the
build, and the outbox relay's batches."""

from __future__ import annotations

import asyncio
import subprocess
import tomllib

import httpx

from services.complaints.app import ComplaintsSettings, build
from shared.kit.metrics import MEMORY_BUDGET_BYTES
from tests.harness import Scrape, repo_root, scrape, service_fixture, wait_for
from tests.integration.test_complaints_service import file

POOL_MAX = 2
complaints = service_fixture(build, ComplaintsSettings, sla_check_seconds=3600, db_pool_max=POOL_MAX)


def _number(found: float | None) -> float:
    assert found is not None, "not exposed"
    return found


def _checkout() -> dict[str, str]:
    """The version pyproject.toml states and the commit checked out here."""
    project = tomllib.loads((repo_root() / "pyproject.toml").read_text())["project"]
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo_root(), capture_output=True, text=True, check=True
    ).stdout.strip()
    return {"version": project["version"], "commit": head}


async def _quiet(client: httpx.AsyncClient) -> Scrape:
    """A scrape taken while no pooled connection is lent out (start-up jobs have finished)."""

    async def idle() -> Scrape | None:
        metrics = await scrape(client)
        return metrics if metrics.value("sinergi_db_pool_connections_in_use") == 0 else None

    return await wait_for(idle, timeout=30)


async def test_the_process_pool_build_and_relay_batches_are_exposed(complaints) -> None:
    client, _, _ = complaints
    await file(client)
    await file(client)

    async def relayed() -> Scrape | None:
        metrics = await scrape(client)
        return metrics if (metrics.value("sinergi_outbox_batch_events_sum") or 0) >= 2 else None

    metrics = await wait_for(relayed, timeout=30)
    batches = _number(metrics.value("sinergi_outbox_batch_events_count"))
    assert 1 <= batches <= 2  # both filings, in one batch or two
    assert metrics.value("sinergi_outbox_batch_events_bucket", le="1000.0") == batches

    # prometheus-client's process, platform and garbage-collector collectors.
    assert _number(metrics.value("process_resident_memory_bytes")) > 10 * 2**20
    assert _number(metrics.value("process_cpu_seconds_total")) > 0
    assert _number(metrics.value("process_open_fds")) > 0
    assert {labels["generation"] for labels in metrics.labels("python_gc_collections_total")} == {
        "0",
        "1",
        "2",
    }
    (python,) = metrics.labels("python_info")
    assert python["implementation"] == "CPython"
    assert metrics.value("sinergi_memory_budget_bytes") == MEMORY_BUDGET_BYTES

    # The pool: open connections, of at most POOL_MAX, each lent out or idle.
    size = _number(metrics.value("sinergi_db_pool_connections"))
    assert 1 <= size <= POOL_MAX
    assert metrics.value("sinergi_db_pool_max_connections") == POOL_MAX
    in_use = _number(metrics.value("sinergi_db_pool_connections_in_use"))
    assert in_use + _number(metrics.value("sinergi_db_pool_connections_idle")) == size
    # Every request above took a connection (the filings, their rate-limit checks).
    assert _number(metrics.value("sinergi_db_pool_acquire_wait_seconds_count")) >= 2

    # The build: the project's version and the checkout's commit.
    checkout = _checkout()
    assert metrics.labels("sinergi_build_info") == [checkout]
    assert metrics.value("sinergi_build_info", **checkout) == 1
    assert (await client.get("/openapi.json")).json()["info"]["version"] == checkout["version"]


async def test_in_use_rises_while_a_connection_is_held_and_waits_are_timed(complaints) -> None:
    client, context, _ = complaints
    pool = context.pool()
    before = await _quiet(client)
    acquired = _number(before.value("sinergi_db_pool_acquire_wait_seconds_count"))

    async with pool.acquire():
        held = await scrape(client)
        # At least this one (a periodic job may hold the other for a moment).
        assert _number(held.value("sinergi_db_pool_connections_in_use")) >= 1
        assert _number(held.value("sinergi_db_pool_acquire_wait_seconds_count")) >= acquired + 1

        async with pool.acquire():  # every connection is this test's now
            full = await scrape(client)
            assert full.value("sinergi_db_pool_connections_in_use") == POOL_MAX
            assert full.value("sinergi_db_pool_connections") == POOL_MAX
            assert full.value("sinergi_db_pool_connections_idle") == 0
            # The next request waits until one comes back.
            waiting = asyncio.create_task(pool.fetchval("SELECT 1"))
            await asyncio.sleep(0.3)
            assert not waiting.done()
            before_release = await scrape(client)
        assert await waiting == 1

    after = await _quiet(client)
    waited = _number(after.value("sinergi_db_pool_acquire_wait_seconds_sum")) - _number(
        before_release.value("sinergi_db_pool_acquire_wait_seconds_sum")
    )
    assert waited >= 0.3  # the waiting request's time, observed when it got its connection
    assert _number(after.value("sinergi_db_pool_acquire_wait_seconds_count")) >= acquired + 3
