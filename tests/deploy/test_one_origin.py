"""One host name for the regency: the edge (deploy/nginx/edge.conf on this machine's
nginx) in front of the portal, the complaints service and the integration view, started
as processes with the paths compose gives them (<SERVICE>_ROOT_PATH). Through the edge's
public port: the portal at /, the dashboard under /dasbor/ with every link it writes
under it too, a service's API and its docs under /api/<service>/, a photo upload of
several megabytes, and a complaint filed there followed on the dashboard's tracking."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from services.complaints.api import FileComplaintIn
from shared.kit.attachments import MAX_UPLOAD_REQUEST_BYTES
from shared.kit.bodies import example_of
from shared.runtime.embedded import free_port
from shared.runtime.select import Infrastructure
from tests.browser.portal_support import service_processes
from tests.deploy.helpers import COMPOSE, EDGE_CONF, edge_on_loopback, environment, merged_compose
from tests.harness import new_database, wait_for

BEHIND_THE_EDGE = ("complaints", "integration", "portal")


def root_paths() -> dict[str, str]:
    """Each service's path on the host name, as compose configures it."""
    services = merged_compose(COMPOSE)["services"]
    found = {}
    for name in ("permits", "health", "complaints", "notifications", "integration", "portal"):
        value = environment(services[name]).get(f"{name.upper()}_ROOT_PATH")
        found[name] = value or ""
    return found


def test_compose_and_the_edge_agree_on_every_path() -> None:
    conf = EDGE_CONF.read_text()
    for name, path in root_paths().items():
        if not path:  # served at the root: the portal is the edge's catch-all
            assert name == "portal"
            assert re.search(r"location / \{\s*set \$upstream http://portal:8005;", conf)
            continue
        stripped = re.search(
            rf"location {path}/ \{{\s*set \$upstream http://{name}:\d+;\s*"
            rf"rewrite \^{path}\(/\.\*\)\$ \$1 break;",
            conf,
        )
        assert stripped, f"the edge serves {name} under {path}/ with the prefix stripped"
    # Every service's API under /api/<service>/, the integration view's as well.
    for name in ("permits", "health", "complaints", "notifications", "integration"):
        assert f"location /api/{name}/ {{" in conf


def test_the_edge_passes_server_sent_events_on_at_once() -> None:
    """The dashboard's live feed and the waiting-room display's stream
    (/antrean/layar/siaran, a called number shows within 2 s) reach the browser as
    sent: no buffering anywhere on the edge, and reads long enough for an open stream."""
    conf = EDGE_CONF.read_text()
    assert re.search(r"^proxy_buffering off;", conf, re.MULTILINE)
    assert "proxy_buffering on" not in conf
    timeout = re.search(r"^proxy_read_timeout (\d+)h;", conf, re.MULTILINE)
    assert timeout and int(timeout[1]) >= 1


def test_the_edge_lets_through_the_largest_upload_a_service_takes() -> None:
    limit = re.search(r"^client_max_body_size (\d+)m;", EDGE_CONF.read_text(), re.MULTILINE)
    assert limit and int(limit[1]) * 1024 * 1024 == MAX_UPLOAD_REQUEST_BYTES


@pytest.fixture
async def front(infra: Infrastructure, tmp_path: Path) -> AsyncIterator[str]:
    paths = root_paths()
    ports = {name: free_port() for name in BEHIND_THE_EDGE}
    portal_env = {
        f"PORTAL_{name.upper()}_URL": f"http://127.0.0.1:{ports[name]}"
        for name in ("complaints", "integration")
    }
    specs = {
        name: (
            ports[name],
            await new_database(infra),
            {f"{name.upper()}_ROOT_PATH": paths[name], **(portal_env if name == "portal" else {})},
        )
        for name in BEHIND_THE_EDGE
    }
    closed = free_port()
    async with service_processes(infra, specs):
        with edge_on_loopback(tmp_path, lambda name: ports.get(name, closed)) as edge:
            yield f"http://127.0.0.1:{edge['front']}"


def local_links(html: str) -> list[str]:
    return re.findall(r'(?:href|src|action|data-stream)="(/[^"]*)"', html)


async def test_one_host_name_serves_the_portal_the_dashboard_and_the_apis(front: str) -> None:
    async with httpx.AsyncClient(base_url=front, timeout=30) as web:
        portal = await web.get("/")
        assert portal.status_code == 200 and "/lapor" in portal.text

        assert (await web.get("/dasbor")).headers["location"] == "/dasbor/"
        dashboard = await web.get("/dasbor/")
        assert dashboard.status_code == 200
        links = local_links(dashboard.text)
        assert links and all(link.startswith("/dasbor/") for link in links), links
        for asset in {link for link in links if "/static/" in link}:
            assert (await web.get(asset)).status_code == 200, asset

        categories = await web.get("/api/complaints/categories")
        assert categories.status_code == 200 and categories.json()
        docs = await web.get("/api/complaints/docs")
        assert "/api/complaints/openapi.json" in docs.text
        assert "/complaints" in (await web.get("/api/complaints/openapi.json")).json()["paths"]

        # A phone photo of a few megabytes passes the edge (the service caps it at 5 MB).
        noise = Image.effect_noise((1400, 1400), 120).convert("RGB")
        photo = io.BytesIO()
        noise.save(photo, "JPEG", quality=95)
        assert photo.tell() > 1024 * 1024
        uploaded = await web.post(
            "/api/complaints/complaints/photos", files={"file": ("jalan.jpg", photo.getvalue(), "image/jpeg")}
        )
        assert uploaded.status_code == 201, uploaded.text

        filed = await web.post("/api/complaints/complaints", json=example_of(FileComplaintIn))
        assert filed.status_code == 201, filed.text
        code = filed.json()["tracking_code"]

        async def tracked() -> bool:
            return (await web.get(f"/dasbor/api/track/{code}")).status_code == 200

        await wait_for(tracked, timeout=60)
        page = await web.get("/dasbor/lacak", params={"kode": code})
        assert page.status_code == 200 and code in page.text
        assert all(link.startswith("/dasbor/") for link in local_links(page.text))
