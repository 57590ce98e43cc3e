"""The edge proxy's coarse per-address limit (deploy/nginx/edge.conf) and what compose
gives the services to find the client behind it (SINERGI_TRUSTED_PROXIES): read from the
files, then the edge run on this machine's nginx and flooded from one address."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from ipaddress import ip_network
from pathlib import Path

import httpx
import pytest

from shared.kit.settings import PlatformSettings
from shared.runtime.embedded import free_port
from shared.runtime.topology import SERVICES
from tests.deploy.helpers import (
    COMPOSE,
    EDGE_CONF,
    ENV_EXAMPLE,
    edge_on_loopback,
    environment,
    merged_compose,
    read_env_file,
)

SUBNET = "${NETWORK_SUBNET:-172.28.0.0/16}"


def test_the_edge_limits_every_address_coarsely() -> None:
    conf = EDGE_CONF.read_text()
    zone = re.search(r"limit_req_zone \$binary_remote_addr zone=(\w+):\d+m rate=(\d+)r/s;", conf)
    assert zone, "a limit_req_zone keyed by the client's address"
    # In the http context (before any server block), so every port and path shares it.
    applied = re.search(rf"^limit_req zone={zone[1]} burst=(\d+) nodelay;", conf, re.MULTILINE)
    assert applied and applied.start() < conf.index("server {")
    assert int(zone[2]) >= 10 and int(applied[1]) >= 50, "coarse: far above one office's traffic"
    assert "limit_req_status 429;" in conf
    assert "add_header Retry-After $edge_retry_after always;" in conf
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in conf


def test_services_trust_only_the_compose_network_as_proxy() -> None:
    compose = merged_compose(COMPOSE)
    assert compose["networks"]["default"]["ipam"]["config"] == [{"subnet": SUBNET}]
    for service in SERVICES:
        assert environment(compose["services"][service.name])["SINERGI_TRUSTED_PROXIES"] == SUBNET
    subnet = read_env_file(ENV_EXAMPLE)["NETWORK_SUBNET"]
    assert PlatformSettings(trusted_proxies=subnet).trusted_proxies == [ip_network(subnet)]


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[int]:
    """The edge with every upstream on a closed port (an allowed request answers 502, a
    limited one 429). Gives the complaints service's port."""
    closed = free_port()
    with edge_on_loopback(tmp_path, lambda _: closed) as ports:
        yield ports["complaints"]


def test_a_flood_from_one_address_is_answered_429_with_retry_after(edge: int) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{edge}", timeout=10) as client:

        def post(_: int) -> httpx.Response:
            return client.post("/complaints", json={})

        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(post, range(300)))
        elapsed = time.monotonic() - started
    passed = [a for a in answers if a.status_code == 502]  # reached the (absent) service
    limited = [a for a in answers if a.status_code == 429]
    assert len(passed) + len(limited) == len(answers)
    # The burst (100) and what the rate (20/s) refills while the flood lasts, no more.
    assert 100 <= len(passed) <= 100 + 20 * elapsed + 2, (len(passed), elapsed)
    assert limited and all(a.headers["Retry-After"] == "1" for a in limited)
    assert all("Retry-After" not in a.headers for a in passed)
