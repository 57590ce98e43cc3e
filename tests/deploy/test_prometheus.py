"""deploy/prometheus: promtool's checks and rule unit tests, the alerts' runbooks and
metric names, and a real Prometheus (Debian's /usr/bin/prometheus) scraping every
service of this checkout started as its own process, as the compose file starts it."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from shared.kit.metrics import MEMORY_BUDGET_BYTES, MEMORY_BUDGET_MB, KitMetrics
from shared.runtime.embedded import free_port
from shared.runtime.select import Infrastructure
from shared.runtime.topology import SERVICES, ServiceInfo, running_services
from tests.deploy.conftest import DeployPostgres
from tests.deploy.helpers import (
    OPERATIONS,
    PROMETHEUS_DIR,
    ROOT,
    effective_settings_class,
    env_prefix,
    promql_metric_names,
    promtool,
    require_tool,
    unknown_metrics,
)

CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
# What Prometheus loads: the hand-written alerts and the SLO rules generated from slos.yml.
RULE_FILES = ("alerts.yml", "slo_rules.yml")


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_check_config() -> None:
    result = promtool("check", "config", CONFIG.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", ALERTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in result.stdout


def test_promtool_rule_unit_tests() -> None:
    tests = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text())
    tested = {t["alertname"] for case in tests["tests"] for t in case.get("alert_rule_test", [])}
    assert len(tested) >= 2
    assert tested <= {r["alert"] for r in _rules()}
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_alerts_the_operators_need_exist() -> None:
    metrics_alerted = {name for rule in _rules() for name in promql_metric_names(rule["expr"])}
    for metric in (
        "up",
        "sinergi_outbox_pending_events",
        "sinergi_outbox_oldest_pending_age_seconds",
        "sinergi_consumer_lag_messages",
        "sinergi_dead_letters_total",
        "sinergi_complaints_sla_events_total",
        "sinergi_permits_watcher_events_total",
        "sinergi_notifications_failed_total",
        "sinergi_rate_limited_total",
        "process_resident_memory_bytes",
        "sinergi_memory_budget_bytes",
        "sinergi_db_pool_connections_in_use",
        "sinergi_db_pool_acquire_wait_seconds_bucket",
    ):
        assert metric in metrics_alerted, metric


def test_the_memory_budget_is_the_one_capacity_md_states() -> None:
    """The memory alert compares with the budget each service exports; that budget is
    the figure docs/capacity.md plans with."""
    capacity = (ROOT / "docs" / "capacity.md").read_text(encoding="utf-8")
    assert f"**Memory ≤ {MEMORY_BUDGET_MB} MB per process**" in capacity
    assert KitMetrics("check").registry.get_sample_value("sinergi_memory_budget_bytes") == MEMORY_BUDGET_BYTES


def test_every_alert_is_annotated_and_has_a_runbook() -> None:
    docs = OPERATIONS.read_text(encoding="utf-8")
    headings = {line.lstrip("#").strip() for line in docs.splitlines() if line.startswith("### ")}
    names = [rule["alert"] for rule in _rules()]
    assert len(names) == len(set(names))
    for rule in _rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), name
        annotations = rule["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip(), name
        assert annotations["runbook"] == f"docs/operations.md#{name.lower()}", name
        assert name in headings, f"docs/operations.md has no '### {name}' runbook section"


def test_alerts_use_only_metrics_the_code_defines() -> None:
    for rule in _rules():
        assert not unknown_metrics(rule["expr"]), f"{rule['alert']}: {unknown_metrics(rule['expr'])}"


def test_scrape_config_has_every_service_by_compose_name_and_port() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    assert config["rule_files"] == list(RULE_FILES)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for service in SERVICES:
        job = jobs[service.name]
        assert job.get("metrics_path", "/metrics") == "/metrics"
        (sd,) = job["dns_sd_configs"]
        assert sd["names"] == [service.name] and sd["type"] == "A" and sd["port"] == service.port


# --- a real Prometheus against the services -----------------------------------------------------------


def _isolation(service: ServiceInfo) -> dict[str, str]:
    """Keep the services of this test out of the other tests' way on the session broker:
    consumer groups of their own, and no seed data published onto the domain topics."""
    prefix = env_prefix(service)
    fields = effective_settings_class(service).model_fields
    env = {}
    if "consumer_group" in fields:
        env[f"{prefix}CONSUMER_GROUP"] = f"deploy-check-{service.name}-{uuid.uuid4().hex[:8]}"
    if "seed_path" in fields:
        env[f"{prefix}SEED_PATH"] = ""
    return env


def _start_service(
    service: ServiceInfo, port: int, infra: Infrastructure, db_url: str, log: Path
) -> subprocess.Popen[bytes]:
    """The service as its own process (`python -m services.<name>`), configured through
    its environment as the compose file configures it."""
    prefix = env_prefix(service)
    env = {
        **os.environ,
        **_isolation(service),
        "SINERGI_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "SINERGI_KAFKA_IDEMPOTENCE": str(infra.kafka_idempotence).lower(),
        "SINERGI_LOG_LEVEL": "WARNING",
        f"{prefix}DATABASE_URL": db_url,
        f"{prefix}HOST": "127.0.0.1",
        f"{prefix}PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", service.module], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def _start_prometheus(binary: str, config: Path, port: int, work: Path) -> subprocess.Popen[bytes]:
    """Prometheus on a free port with its own data directory."""
    with (work / "prometheus.log").open("wb") as out:
        return subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={work / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _test_config(ports: dict[str, int], prometheus_port: int) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with static targets on this machine's free ports
    instead of Docker DNS, a 1 s interval, and the rules by absolute path."""
    config = yaml.safe_load(CONFIG.read_text())
    test = copy.deepcopy(config)
    test["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    test["rule_files"] = [str(PROMETHEUS_DIR / name) for name in RULE_FILES]
    jobs = []
    for job in config["scrape_configs"]:
        job = copy.deepcopy(job)
        if "dns_sd_configs" in job:
            (name,) = job.pop("dns_sd_configs")[0]["names"]
            if name not in ports:
                continue
            job["static_configs"] = [{"targets": [f"127.0.0.1:{ports[name]}"]}]
        else:
            job["static_configs"] = [{"targets": [f"127.0.0.1:{prometheus_port}"]}]
        jobs.append(job)
    test["scrape_configs"] = jobs
    return test


def _tail(path: Path, limit: int = 3000) -> str:
    return path.read_text(errors="replace")[-limit:] if path.exists() else ""


@pytest.mark.timeout(150)
async def test_real_prometheus_scrapes_every_service(
    infra: Infrastructure, deploy_postgres: DeployPostgres, tmp_path: Path
) -> None:
    prometheus_bin = require_tool("prometheus")
    services = running_services()
    assert services, "no service in this checkout"
    ports = {s.name: free_port() for s in services}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = {s.name: tmp_path / f"{s.name}.log" for s in services}
    prometheus: subprocess.Popen[bytes] | None = None
    try:
        for s in services:
            # Each service connects with its own role, as in the compose deployment.
            url = deploy_postgres.url(s.database, s.database)
            procs[s.name] = _start_service(s, ports[s.name], infra, url, logs[s.name])

        async with httpx.AsyncClient(timeout=5) as client:

            async def healthy(name: str) -> None:
                deadline = asyncio.get_running_loop().time() + 90
                while True:
                    if procs[name].poll() is not None:
                        raise AssertionError(f"{name} exited:\n{_tail(logs[name])}")
                    with contextlib.suppress(httpx.TransportError):
                        response = await client.get(f"http://127.0.0.1:{ports[name]}/health")
                        if response.status_code == 200:
                            return
                    if asyncio.get_running_loop().time() > deadline:
                        raise AssertionError(f"{name} not healthy:\n{_tail(logs[name])}")
                    await asyncio.sleep(0.3)

            await asyncio.gather(*(healthy(s.name) for s in services))

            prometheus_port = free_port()
            config_path = tmp_path / "prometheus.yml"
            config_path.write_text(yaml.safe_dump(_test_config(ports, prometheus_port)))
            prometheus_log = tmp_path / "prometheus.log"
            prometheus = _start_prometheus(prometheus_bin, config_path, prometheus_port, tmp_path)
            api = f"http://127.0.0.1:{prometheus_port}/api/v1"
            expected_jobs = {s.name for s in services} | {"prometheus"}

            async def query(q: str) -> list[dict[str, Any]]:
                response = await client.get(f"{api}/query", params={"query": q})
                response.raise_for_status()
                return response.json()["data"]["result"]

            async def converged() -> dict[str, Any] | None:
                with contextlib.suppress(httpx.TransportError, httpx.HTTPStatusError):
                    targets = (await client.get(f"{api}/targets")).json()["data"]["activeTargets"]
                    health = {t["labels"]["job"]: t["health"] for t in targets}
                    up = {r["metric"]["job"]: r["value"][1] for r in await query("up")}
                    outbox = await query("count by (job) (sinergi_outbox_pending_events)")
                    rules = (await client.get(f"{api}/rules")).json()["data"]["groups"]
                    # RFC 3339 times; a rule never evaluated reports 0001-01-01T00:00:00Z.
                    evaluated = all(r["lastEvaluation"] > "2000" for g in rules for r in g["rules"])
                    if (
                        set(health) == expected_jobs
                        and all(h == "up" for h in health.values())
                        and set(up) == expected_jobs
                        and all(v == "1" for v in up.values())
                        and {r["metric"]["job"] for r in outbox} == {s.name for s in services}
                        and rules
                        and evaluated
                    ):
                        return {"targets": targets, "rules": rules}
                return None

            deadline = asyncio.get_running_loop().time() + 40
            state = None
            while state is None:
                if prometheus.poll() is not None:
                    raise AssertionError(f"prometheus exited:\n{_tail(prometheus_log)}")
                if asyncio.get_running_loop().time() > deadline:
                    targets = await client.get(f"{api}/targets")
                    raise AssertionError(f"targets did not all come up: {targets.text[:3000]}")
                await asyncio.sleep(0.5)
                state = await converged()

            for target in state["targets"]:
                assert target["scrapeUrl"].endswith("/metrics"), target
            # The alert rules load and evaluate against real series without errors.
            loaded = {r["name"]: r for g in state["rules"] for r in g["rules"]}
            assert set(loaded) == {
                rule.get("alert") or rule["record"]
                for name in RULE_FILES
                for group in yaml.safe_load((PROMETHEUS_DIR / name).read_text())["groups"]
                for rule in group["rules"]
            }
            assert all(r["health"] == "ok" for r in loaded.values()), {
                n: r.get("lastError") for n, r in loaded.items() if r["health"] != "ok"
            }
            # Kit metrics from every service; FastStream's once a broker client runs.
            http = await query("count by (job) (sinergi_http_requests_total)")
            assert {r["metric"]["job"] for r in http} == {s.name for s in services}
            # Every service's process, database pool and build (Prometheus' own job has
            # process series too).
            for series in (
                "process_resident_memory_bytes > 0",
                "process_open_fds > 0",
                "sinergi_db_pool_connections > 0",
                'sinergi_build_info{version!="unknown", commit!="unknown"}',
            ):
                exposed = {r["metric"]["job"] for r in await query(series)} - {"prometheus"}
                assert exposed == {s.name for s in services}, series
            firing = await query('ALERTS{alertstate="firing", alertname=~"SinergiService.*"}')
            assert firing == []
    finally:
        if prometheus is not None and prometheus.poll() is None:
            prometheus.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                prometheus.wait(10)
            if prometheus.poll() is None:
                prometheus.kill()
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                await asyncio.to_thread(proc.wait, 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
