"""The edge proxy's coarse per-address limit (deploy/nginx/edge.conf) and what compose
gives the services to find the client behind it (SINERGI_TRUSTED_PROXIES): read from the
files, then the edge run on this machine's nginx and flooded from one address."""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
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
    DEPLOY,
    ENV_EXAMPLE,
    environment,
    merged_compose,
    nginx_config,
    read_env_file,
)

EDGE_CONF = DEPLOY / "nginx" / "edge.conf"
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


def _nginx() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[int]:
    """edge.conf on this machine's nginx: every listen on a free loopback port, every
    upstream on a closed port (an allowed request answers 502, a limited one 429).
    Gives the complaints service's port."""
    nginx = _nginx()
    if nginx is None:
        pytest.fail("nginx is not installed (apt-get install nginx-light)")
    conf = EDGE_CONF.read_text()
    closed = free_port()
    conf = conf.replace("http://keycloak:8080;", f"http://127.0.0.1:{closed};")
    ports = {}
    for service in SERVICES:
        conf = conf.replace(f"http://{service.name}:{service.port};", f"http://127.0.0.1:{closed};")
        ports[service.name] = free_port()
        conf = conf.replace(f"listen {service.port};", f"listen 127.0.0.1:{ports[service.name]};")
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{free_port()};")
    conf = conf.replace("resolver 127.0.0.11 valid=10s ipv6=off;", "")
    main = nginx_config(tmp_path, conf)
    process = subprocess.Popen(
        [nginx, "-c", str(main), "-p", str(tmp_path), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port = ports["complaints"]
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                pytest.fail(f"nginx exited: {(tmp_path / 'error.log').read_text(errors='replace')}")
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            assert time.monotonic() < deadline, "the edge did not answer"
            time.sleep(0.2)
        time.sleep(6)  # the probes above spent some of the burst; let it refill
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)


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
