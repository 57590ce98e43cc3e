"""What the browser modules share, started once for tests/browser: Debian's Chromium
(every test opens its own context, so no cookie or storage crosses tests) and the stack
of every service a verified citizen reaches. Starting those per module cost each module
seconds of set-up for nothing a test checks; each test keeps its isolation by its own
data (its own NIK and contact, its own cases), never by fresh services.

Both are package-scoped, not session-scoped: they stop when the last browser test ends.
The stack's notification service joins the `notifications` consumer group on the
session's broker, so left running it would take partitions, and messages, from the
notification services the later directories' tests start and check.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from shared.runtime.fake_gateway import FakeGateway
from shared.runtime.select import Infrastructure
from shared.runtime.smtp_sink import SmtpSink
from tests.browser.citizen_portal_support import (
    FULL_DOCTOR,
    FULL_WEEKDAY,
    CitizenStack,
    citizen_stack,
    fill_a_day,
)
from tests.browser.portal_support import AXE, CHROMIUM, CHROMIUM_ARGS


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's Chromium (as root: "
            "`apt-get update && apt-get install -y chromium`, make system-deps); the browser test does not skip"
        )
    return CHROMIUM


@pytest.fixture(scope="package")
async def browser(chromium: Path) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` in tests/browser/axe (make test does)")
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture(scope="package")
async def stack(
    infra: Infrastructure, smtp_sink: SmtpSink, fake_gateway: FakeGateway
) -> AsyncIterator[CitizenStack]:
    """Notifications, health, complaints, permits, the integration view and the portal,
    each its own process as `make run` starts them, with every Tuesday full: the stack of
    the modules about a verified citizen (a module that needs other services or settings
    defines its own `stack`). No test stops one of these services: one that does, or
    that needs the services to itself, has a stack of its own."""
    async with citizen_stack(infra, smtp_sink, fake_gateway, permits=True) as started:
        await fill_a_day(started, FULL_DOCTOR, FULL_WEEKDAY)
        yield started
