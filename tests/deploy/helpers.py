"""What the deployment checks share: reading compose files the way Docker Compose does
(YAML merge keys, `!reset`, override files, `${VAR}` interpolation), each service's
settings class, the metric names the code defines, and PromQL metric references."""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.kit.settings import PlatformSettings, ServiceSettings
from shared.runtime.embedded import free_port
from shared.runtime.topology import SERVICES, ServiceInfo

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
CLUSTER = DEPLOY / "docker-compose.cluster.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
OPERATIONS = ROOT / "docs" / "operations.md"
PROMETHEUS_DIR = DEPLOY / "prometheus"
REALM_FILE = DEPLOY / "keycloak" / "sinergi-realm.json"
EDGE_CONF = DEPLOY / "nginx" / "edge.conf"
# The edge's public port: the regency's one host name (the others serve one service each).
FRONT_PORT = 8000
KEYCLOAK_POM = ROOT / "shared" / "runtime" / "maven" / "keycloak" / "pom.xml"

# Databases deploy/postgres/init.sh creates: one per service, then Keycloak's.
IDENTITY_DATABASES = ["keycloak"]
DATABASES = [s.database for s in SERVICES] + IDENTITY_DATABASES

APT_PROMETHEUS = "apt-get update && apt-get install -y --no-install-recommends prometheus"


def nginx_config(root: Path, edge_conf: str) -> Path:
    """An nginx main configuration under `root` that serves the (rewritten) edge
    configuration: every temporary path and the pid file in `root`, no access log."""
    temp = "".join(
        f"  {kind}_temp_path {root}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (root / "edge.conf").write_text(edge_conf)
    main = root / "nginx.conf"
    # Run as root (a CI container), workers would become `nobody` and could not write
    # large request bodies under the test's private temporary folder.
    user = "user root;\n" if os.geteuid() == 0 else ""
    main.write_text(
        f"{user}pid {root}/nginx.pid;\nerror_log {root}/error.log;\nworker_processes 1;\nevents {{}}\n"
        f"http {{\n  access_log off;\n{temp}  include {root}/edge.conf;\n}}\n"
    )
    return main


@contextlib.contextmanager
def edge_on_loopback(root: Path, upstream: Callable[[str], int]) -> Iterator[dict[str, int]]:
    """deploy/nginx/edge.conf run on this machine's nginx: each upstream (a service, or
    "keycloak") on the loopback port `upstream(name)` gives, every listen on a free
    loopback port. Gives the ports by what they serve: "front" (the public port 8000)
    and each service's own."""
    import pytest

    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.fail("nginx is not installed (apt-get install nginx-light)")
    conf = EDGE_CONF.read_text().replace("resolver 127.0.0.11 valid=10s ipv6=off;", "")
    conf = conf.replace("http://keycloak:8080;", f"http://127.0.0.1:{upstream('keycloak')};")
    listens = {"front": FRONT_PORT, "healthz": 8080} | {
        s.name: s.port for s in SERVICES if s.port != FRONT_PORT
    }
    ports = {name: free_port() for name in listens}
    for service in SERVICES:
        conf = conf.replace(
            f"http://{service.name}:{service.port};", f"http://127.0.0.1:{upstream(service.name)};"
        )
    for name, port in listens.items():
        conf = conf.replace(f"listen {port};", f"listen 127.0.0.1:{ports[name]};")
    process = subprocess.Popen(
        [nginx, "-c", str(nginx_config(root, conf)), "-p", str(root), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                pytest.fail(f"nginx exited: {(root / 'error.log').read_text(errors='replace')}")
            with contextlib.suppress(OSError), socket_to(ports["healthz"]):
                break
            assert time.monotonic() < deadline, "the edge did not answer"
            time.sleep(0.2)
        yield ports
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)


def socket_to(port: int) -> contextlib.closing[Any]:
    """A TCP connection to a loopback port (raises OSError while nothing listens)."""
    import socket

    return contextlib.closing(socket.create_connection(("127.0.0.1", port), timeout=2))


def require_tool(name: str) -> str:
    """The path of a Prometheus tool, or a failure that says how CI installs it."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        import pytest

        pytest.fail(f"{name} is not installed; install Debian's Prometheus (as root): {APT_PROMETHEUS}")
    return path


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Debian's promtool run in deploy/prometheus (rule files name each other relatively)."""
    return subprocess.run(
        [require_tool("promtool"), *args],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --- compose files ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reset:
    """`!reset` (Compose 2.24.4+): the override removes the value it is put on."""

    value: Any


@dataclass(frozen=True)
class Override:
    """`!override`: the override replaces the value instead of merging with it."""

    value: Any


class ComposeLoader(yaml.SafeLoader):
    pass


def _reset(loader: ComposeLoader, node: yaml.Node) -> Reset:
    if isinstance(node, yaml.SequenceNode):
        return Reset(loader.construct_sequence(node))
    if isinstance(node, yaml.MappingNode):
        return Reset(loader.construct_mapping(node))
    return Reset(loader.construct_scalar(node))  # type: ignore[arg-type]


def _override(loader: ComposeLoader, node: yaml.Node) -> Override:
    if isinstance(node, yaml.SequenceNode):
        return Override(loader.construct_sequence(node, deep=True))
    if isinstance(node, yaml.MappingNode):
        return Override(loader.construct_mapping(node, deep=True))
    return Override(loader.construct_scalar(node))  # type: ignore[arg-type]


ComposeLoader.add_constructor("!reset", _reset)
ComposeLoader.add_constructor("!override", _override)


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return yaml.load(f, Loader=ComposeLoader)


# Compose merges these sequences by appending (unique); everything else is replaced.
_APPENDED = {"ports", "expose", "volumes", "dns", "dns_search", "tmpfs", "cap_add", "cap_drop"}


def _merge(base: Any, override: Any, key: str = "") -> Any:
    if isinstance(override, Reset):
        return None
    if isinstance(override, Override):
        return override.value
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for k, v in override.items():
            if isinstance(v, Reset):
                merged.pop(k, None)
            elif k in merged:
                merged[k] = _merge(merged[k], v, k)
            else:
                merged[k] = v.value if isinstance(v, Override) else v
        return merged
    if isinstance(base, list) and isinstance(override, list) and key in _APPENDED:
        return base + [v for v in override if v not in base]
    return override


def merged_compose(*paths: Path) -> dict[str, Any]:
    """The effective model of several compose files (`docker compose -f a -f b`)."""
    result: dict[str, Any] = {}
    for path in paths:
        result = _merge(result, load_yaml(path))
    return result


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    """A service's `environment`, list or mapping form, as a mapping (None: passed
    through from the operator's environment only when set there)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        result: dict[str, str | None] = {}
        for item in env:
            name, sep, value = str(item).partition("=")
            result[name] = value if sep else None
        return result
    return {
        k: (None if v is None else str(v).lower() if isinstance(v, bool) else str(v)) for k, v in env.items()
    }


_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


@dataclass(frozen=True)
class VariableUse:
    name: str
    op: str | None  # None, "-", ":-", "?", ":?", "+", ":+"
    arg: str | None

    @property
    def required(self) -> bool:
        return self.op in ("?", ":?")


def variable_uses(value: Any) -> list[VariableUse]:
    """Every `${VAR...}` in a compose value (strings anywhere inside it)."""
    found: list[VariableUse] = []
    if isinstance(value, dict):
        for k, v in value.items():
            found += variable_uses(k) + variable_uses(v)
    elif isinstance(value, list):
        for v in value:
            found += variable_uses(v)
    elif isinstance(value, (Reset, Override)):
        found += variable_uses(value.value)
    elif isinstance(value, str):
        for m in _VARIABLE.finditer(value):
            if m.group(0) == "$$":
                continue
            found.append(VariableUse(m.group("name") or m.group("bare"), m.group("op"), m.group("arg")))
    return found


class MissingVariable(Exception):
    pass


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's interpolation of one string."""

    def replace(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group("name") or m.group("bare")
        op, arg = m.group("op"), m.group("arg") or ""
        present, current = name in env, env.get(name, "")
        if op == ":-":
            return current if current else arg
        if op == "-":
            return current if present else arg
        if op == ":?":
            if not current:
                raise MissingVariable(f"{name}: {arg}")
            return current
        if op == "?":
            if not present:
                raise MissingVariable(f"{name}: {arg}")
            return current
        if op == ":+":
            return arg if current else ""
        if op == "+":
            return arg if present else ""
        return current

    return _VARIABLE.sub(replace, value)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines (comments and blank lines skipped; surrounding quotes removed)."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def commented_env_names(path: Path) -> set[str]:
    """Names of `# KEY=...` lines: optional settings shown but left unset."""
    return set(re.findall(r"^#\s*([A-Z][A-Z0-9_]*)=", path.read_text(encoding="utf-8"), re.MULTILINE))


# --- settings classes ------------------------------------------------------------------------------


def settings_class(service: ServiceInfo) -> type[ServiceSettings] | None:
    """The service's settings class (a ServiceSettings subclass in services/<name>/app.py),
    or None while the service has no app module yet."""
    if importlib.util.find_spec(f"services.{service.name}") is None:
        return None
    if importlib.util.find_spec(f"services.{service.name}.app") is None:
        return None
    module = importlib.import_module(f"services.{service.name}.app")
    classes = [
        c
        for c in vars(module).values()
        if isinstance(c, type)
        and issubclass(c, ServiceSettings)
        and c is not ServiceSettings
        and c.__module__ == module.__name__
    ]
    assert len(classes) == 1, f"services/{service.name}/app.py should define one settings class: {classes}"
    return classes[0]


def effective_settings_class(service: ServiceInfo) -> type[ServiceSettings]:
    """The settings class, or the kit's base class with the service's prefix."""
    found = settings_class(service)
    if found is not None:
        return found
    return type(  # type: ignore[return-value]
        f"{service.name.title()}BaseSettings",
        (ServiceSettings,),
        {"model_config": SettingsConfigDict(env_prefix=env_prefix(service), extra="ignore")},
    )


def env_prefix(service: ServiceInfo) -> str:
    return f"{service.name.upper()}_"


def env_names(settings: type[BaseSettings]) -> dict[str, str]:
    """Environment variable name -> field name, for a pydantic-settings class."""
    prefix = settings.model_config.get("env_prefix", "") or ""
    names: dict[str, str] = {}
    for field, info in settings.model_fields.items():
        if field == "platform":
            continue
        alias = info.validation_alias if isinstance(info.validation_alias, str) else None
        names[(alias or f"{prefix}{field}").upper()] = field
    return names


def platform_env_names() -> dict[str, str]:
    return env_names(PlatformSettings)


def secret_fields(settings: type[BaseSettings]) -> set[str]:
    """Fields typed SecretStr (or SecretStr | None)."""
    result = set()
    for field, info in settings.model_fields.items():
        annotation = info.annotation
        args = getattr(annotation, "__args__", ())
        if annotation is SecretStr or SecretStr in args:
            result.add(field)
    return result


# --- metric names ------------------------------------------------------------------------------------

# prometheus_client's constructors, and shared/kit/metrics.py's KitMetrics.counter/gauge/
# histogram (a service's domain metrics on its own registry).
_METRIC_CONSTRUCTOR = re.compile(
    r"(\b(?:Counter|Gauge|Histogram|Summary|Info|Enum)|\.(?:counter|gauge|histogram))"
    r"\(\s*(?:name\s*=\s*)?[\"']([a-zA-Z_:][a-zA-Z0-9_:]*)[\"']"
)
_SUFFIXES = ("", "_total", "_created", "_bucket", "_sum", "_count", "_info")
BUILTIN_SERIES = {"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds", "scrape_samples_scraped"}


def code_files() -> list[Path]:
    files = []
    for top in ("shared", "services"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if "tests" not in path.relative_to(ROOT).parts:
                files.append(path)
    return files


@cache
def defined_metric_families() -> dict[str, str]:
    """Metric family name -> defining file, from the prometheus_client constructors in
    shared/ and services/ (tests excluded)."""
    families: dict[str, str] = {}
    for path in code_files():
        text = path.read_text(encoding="utf-8")
        for _, name in _METRIC_CONSTRUCTOR.findall(text):
            families[name] = str(path.relative_to(ROOT))
    return families


@cache
def faststream_series_names() -> frozenset[str]:
    """Series names of FastStream's Kafka Prometheus middleware, from the library itself."""
    from faststream.kafka.prometheus import KafkaPrometheusMiddleware
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    KafkaPrometheusMiddleware(registry=registry, app_name="sinergi")  # as shared/kit/bus.py does
    return frozenset(registry._names_to_collectors)


@cache
def collector_series_names() -> frozenset[str]:
    """Series on the kit's registry of every service, read from a registry itself: those
    of prometheus-client's process, platform and garbage-collector collectors are declared
    nowhere in the code."""
    from shared.kit.metrics import KitMetrics

    return frozenset(s.name for family in KitMetrics("check").registry.collect() for s in family.samples)


@cache
def recorded_series_names() -> frozenset[str]:
    """Series Prometheus records itself: the `record` rules of deploy/prometheus."""
    names = set()
    for path in sorted((DEPLOY / "prometheus").glob("*.yml")):
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups") or []:
            names |= {rule["record"] for rule in group.get("rules", []) if "record" in rule}
    return frozenset(names)


@cache
def allowed_series_names() -> frozenset[str]:
    names: set[str] = set(BUILTIN_SERIES) | set(faststream_series_names()) | set(collector_series_names())
    names |= recorded_series_names()
    for family in defined_metric_families():
        base = family.removesuffix("_total")
        names.update(base + s for s in _SUFFIXES)
        names.add(family)
    return frozenset(names)


_KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "inf",
    "nan",
    "atan2",
}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (strings, label matchers, ranges,
    grouping clauses, functions and keywords removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", text)
    names = set()
    for m in re.finditer(r"(?<![\w$.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()", text):
        name = m.group(1)
        if name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def unknown_metrics(expr: str) -> set[str]:
    return {n for n in promql_metric_names(expr) if n not in allowed_series_names()}


# --- misc ------------------------------------------------------------------------------------------


def uses_kit_cli(service: ServiceInfo) -> bool:
    """Whether `python -m services.<name>` routes to shared/kit/cli.py's commands
    (migrate, republish, replay-dead-letters)."""
    main = ROOT / "services" / service.name / "__main__.py"
    tree = ast.parse(main.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "shared.kit.cli":
            return True
    return False


def service_names() -> list[str]:
    return [s.name for s in SERVICES]
