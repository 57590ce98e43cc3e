"""`make run`: the whole system on one machine.

Starts (or, with explicit settings, uses) the broker and PostgreSQL, creates each
service's database and the topics, starts every service as its own process, prints
where everything is and a development officer token, and on Ctrl-C stops it all.
Data of the embedded PostgreSQL is kept in `.run/` between runs; the embedded broker
keeps events in memory only (see docs/operations.md on republishing from the outbox).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from shared.kit.auth import issue_token
from shared.kit.settings import PlatformSettings
from shared.runtime.fake_gateway import FakeGateway
from shared.runtime.select import start_infrastructure
from shared.runtime.smtp_sink import SmtpSink
from shared.runtime.topology import ServiceInfo, running_services, topics

ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger("sinergi.run")


def _service_env(service: ServiceInfo, infra_env: dict[str, str], url: str) -> dict[str, str]:
    env = {**os.environ, **infra_env}
    prefix = service.name.upper()
    env.setdefault(f"{prefix}_DATABASE_URL", url)
    env.setdefault(f"{prefix}_PORT", str(service.port))
    env.setdefault(f"{prefix}_HOST", "127.0.0.1")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _notification_channels(stack: contextlib.ExitStack, work: Path) -> tuple[dict[str, str], list[str]]:
    """Local stand-ins for the notification service's SMTP relay and SMS/WhatsApp gateway,
    unless the environment names real ones (explicit settings win)."""
    env: dict[str, str] = {}
    lines: list[str] = []
    if os.environ.get("NOTIFICATIONS_SMTP_HOST"):
        lines.append(f"  mail        via {os.environ['NOTIFICATIONS_SMTP_HOST']} (NOTIFICATIONS_SMTP_HOST)")
    else:
        sink = stack.enter_context(SmtpSink(mail_dir=work / "mail"))
        env |= {"NOTIFICATIONS_SMTP_HOST": sink.host, "NOTIFICATIONS_SMTP_PORT": str(sink.port)}
        lines.append(f"  mail        {work / 'mail'}/*.eml   (SMTP sink {sink.url})")
    if os.environ.get("NOTIFICATIONS_SMS_GATEWAY_URL") or os.environ.get(
        "NOTIFICATIONS_WHATSAPP_GATEWAY_URL"
    ):
        lines.append("  sms/wa      via the configured NOTIFICATIONS_*_GATEWAY_URL")
    else:
        gateway = stack.enter_context(FakeGateway(record_dir=work / "gateway"))
        env |= {
            "NOTIFICATIONS_SMS_GATEWAY_URL": gateway.sms_url,
            "NOTIFICATIONS_WHATSAPP_GATEWAY_URL": gateway.whatsapp_url,
        }
        lines.append(f"  sms/wa      {work / 'gateway' / 'messages.jsonl'}   (fake gateway {gateway.url})")
    return env, lines


def _wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r,
        ):
            # Our own child must answer, not whatever else holds the port.
            if r.status == 200 and json.loads(r.read()).get("pid") == proc.pid:
                return True
        time.sleep(0.3)
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description="Run Sinergi locally")
    parser.add_argument("--work-dir", type=Path, default=ROOT / ".run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    work = args.work_dir
    (work / "logs").mkdir(parents=True, exist_ok=True)
    services = running_services()

    stop_requested = False

    def _stop(*_: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    with (
        start_infrastructure([s.database for s in services], topics(), work_dir=work, durable=True) as infra,
        contextlib.ExitStack() as channels,
    ):
        channel_env, channel_lines = _notification_channels(channels, work)
        infra_env = infra.broker_env()
        # Other commands (make tail, make republish) find the broker through this file.
        (work / "sinergi.env").write_text("".join(f"{k}={v}\n" for k, v in infra_env.items()))
        procs: dict[str, subprocess.Popen[bytes]] = {}
        for service in services:
            logfile = open(work / "logs" / f"{service.name}.log", "ab")  # noqa: SIM115
            procs[service.name] = subprocess.Popen(
                [sys.executable, "-m", service.module],
                cwd=ROOT,
                env=_service_env(
                    service, {**infra_env, **channel_env}, infra.database_urls[service.database]
                ),
                stdout=logfile,
                stderr=subprocess.STDOUT,
            )
        healthy = {s.name: _wait_healthy(s.port, procs[s.name]) for s in services}
        platform = PlatformSettings()
        workspace = [f"http://127.0.0.1:{s.port}/petugas" for s in services if s.front_door]
        if platform.oidc_issuer:
            sign_in_lines = [
                f"Officers sign in with the identity provider {platform.oidc_issuer}",
                *(f"  officers' workspace: {url} (the demo officers of `make idp`)" for url in workspace),
                "  a token for curl:  .venv/bin/python -m shared.runtime.keycloak token admin-diskominfo",
            ]
        else:
            token = issue_token(platform.auth_secret.get_secret_value(), subject="dev-admin", role="admin")
            sign_in_lines = [
                *(
                    f"Officers' workspace: {url} (development sign-in: a name, a role, an OPD)"
                    for url in workspace
                ),
                "Development officer token (role admin, 8 h):",
                f"  export TOKEN={token}",
            ]
        # The citizens' front door first: the address to open in a browser.
        front = [f"Portal warga (citizens): http://127.0.0.1:{s.port}/" for s in services if s.front_door]
        lines = [
            "",
            *front,
            "",
            f"Sinergi is running ({infra.kind} infrastructure)",
            f"  broker      {infra.kafka_bootstrap}",
        ]
        for s in services:
            state = "up" if healthy[s.name] else "NOT HEALTHY (see log)"
            page = "/" if s.front_door else "/docs"
            lines.append(f"  {s.name:<13} http://127.0.0.1:{s.port}{page}   {state}")
            lines.append(f"  {'':<13} database {infra.database_urls[s.database]}")
        lines += [
            f"  logs        {work / 'logs'}",
            *channel_lines,
            "",
            *sign_in_lines,
            "",
            "File a complaint:",
            "  curl -s -X POST http://127.0.0.1:8003/complaints -H 'content-type: application/json' \\",
            '    -d \'{"kind":"pengaduan","category":"jalan_rusak","title":"Jalan berlubang",'
            '"description":"Lubang besar di jalan desa dekat balai desa.","desa_code":"33.06.01.2001",'
            '"reporter":{"nik":"3306061708900001","phone":"081234567890"}}\'',
            "",
            "Watch the events:  make tail TOPIC=complaints.events",
            "",
            "Press Ctrl-C to stop.",
        ]
        print("\n".join(lines), flush=True)
        while not stop_requested:
            for name, proc in procs.items():
                if proc.poll() is not None and not getattr(proc, "_reported", False):
                    log.error("%s exited with %s; see %s", name, proc.returncode, work / "logs")
                    proc._reported = True  # type: ignore[attr-defined]
            time.sleep(0.5)
        print("\nStopping services…", flush=True)
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=25)
            except subprocess.TimeoutExpired:
                proc.kill()
        print("Stopping infrastructure…", flush=True)
    print("Stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
