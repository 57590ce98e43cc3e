"""Every route of every service against the documented access policy, docs/access.yaml.

The policy is written by hand from the documentation, not derived from the code under
test. For each running service, built in-process on a fresh database:

(a) the OpenAPI operations are exactly the policy's `public` + `officer`, and the routes
    left out of the schema (pages, static files, the docs UI) exactly its `pages`;
(b) every officer operation declares security in OpenAPI, and no public one does;
(c) every officer operation and officer page answers 401 without a token, 403 to each
    real role the policy does not list, and to each role it lists exactly the documented
    success (the operation's 2xx in OpenAPI) for a real, legal request
    (documented_requests.py). A route with a `scope` also answers 403 to an officer of
    the scoped role from another OPD or facility, and a scoped role without its claim is
    refused everywhere. Never a 5xx.

Callers are signed with development tokens, then (the same matrix) signed in at the
regency's identity provider. The matrix size is printed (`pytest -s`).
tests/security/test_auth_every_route.py uses the same policy to walk every non-public
operation with bad tokens.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount

from shared.kit.auth import issue_token
from shared.kit.settings import DEV_AUTH_SECRET, PlatformSettings
from shared.runtime.select import Infrastructure
from shared.runtime.topology import SERVICES, running_services
from shared.schemas import EGOV_TOPICS
from tests.citizen_support import trust_development_sessions
from tests.harness import new_group, repo_root, running
from tests.identity_support import OFFICER_OF_ROLE, Provider
from tests.notifications_support import GATEWAY_TOKEN
from tests.security import documented_requests as documented

POLICY_PATH = repo_root() / "docs" / "access.yaml"
ALWAYS_ALLOWED = "admin"  # require_role accepts it on every officer route
PLACEHOLDER = "X"
CITIZEN_REF = "cr1_" + "0" * 32  # well-formed, known to no one
OPERATION = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) /\S*$")
HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "options", "trace"}

# What a page needs in the request before it looks at the caller at all: the officer page
# shows its sign-in form to anyone and checks the token only when asked for a citizen.
# The token itself always travels as a bearer header, which the page also accepts.
PAGE_PROBES: dict[tuple[str, str], dict[str, Any]] = {
    ("integration", "GET /petugas"): {"params": {"ref": CITIZEN_REF}},
    ("integration", "POST /petugas"): {
        "content": f"ref={CITIZEN_REF}",
        "headers": {"content-type": "application/x-www-form-urlencoded"},
    },
}

# ----- the policy ------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """Who may call an officer operation: roles besides admin, and the scope (`opd`,
    `facility`) the scoped role's officer must share with the item, if any."""

    roles: frozenset[str]
    scope: str | None = None


@dataclass(frozen=True)
class Scope:
    """A role whose officers act only for the OPD or facility in one claim of their token."""

    role: str
    claim: str
    every: str | None = None  # the claim's value that stands for all (the health office's `*`)


@dataclass(frozen=True)
class Section:
    """`public` and `officer` of one service's operations or pages."""

    public: frozenset[str]
    officer: Mapping[str, Access]  # operation -> who may call it

    @property
    def operations(self) -> set[str]:
        return set(self.public) | set(self.officer)


@dataclass(frozen=True)
class ServicePolicy:
    api: Section
    pages: Section


@dataclass(frozen=True)
class Policy:
    roles: tuple[str, ...]
    scopes: Mapping[str, Scope]
    services: Mapping[str, ServicePolicy]

    def scope_of_role(self, role: str) -> Scope | None:
        return next((scope for scope in self.scopes.values() if scope.role == role), None)


class _StrictLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice (plain YAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        twice = sorted({str(k) for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(f"{POLICY_PATH.name} line {node.start_mark.line + 1}: listed twice: {twice}")
        return super().construct_mapping(node, deep=deep)


def _access_of(entry: Any, where: str, declared: set[str], scopes: Mapping[str, Scope]) -> Access:
    scope = None
    if isinstance(entry, dict):
        unknown = set(entry) - {"roles", "scope"}
        if unknown:
            raise ValueError(f"{where}: {sorted(unknown)} unknown (`roles` and `scope` only)")
        scope = entry.get("scope")
        if scope is not None and scope not in scopes:
            raise ValueError(f"{where}: unknown scope {scope!r} (declared: {sorted(scopes)})")
        entry = entry.get("roles")
    if not isinstance(entry, list) or not all(isinstance(r, str) for r in entry):
        raise ValueError(f"{where}: give a list of roles (empty: admin only)")
    roles = set(entry)
    if len(roles) != len(entry):
        raise ValueError(f"{where}: a role is listed twice")
    if ALWAYS_ALLOWED in roles:
        raise ValueError(f"{where}: `{ALWAYS_ALLOWED}` is always allowed; do not list it")
    if roles - declared:
        raise ValueError(f"{where}: unknown roles {sorted(roles - declared)}")
    if scope is not None and scopes[scope].role not in roles:
        raise ValueError(f"{where}: scope {scope!r} is of {scopes[scope].role}, a role not listed")
    return Access(frozenset(roles), scope)


def _section(raw: Any, where: str, declared: set[str], scopes: Mapping[str, Scope]) -> Section:
    if not isinstance(raw, dict) or set(raw) - {"public", "officer"}:
        raise ValueError(f"{where}: a mapping with `public` and `officer`")
    public = raw.get("public") or []
    officer = raw.get("officer") or {}
    if not isinstance(public, list) or not isinstance(officer, dict):
        raise ValueError(f"{where}: `public` is a list and `officer` a mapping")
    for op in [*public, *officer]:
        if not isinstance(op, str) or not OPERATION.match(op):
            raise ValueError(f"{where}: {op!r} is not 'METHOD /path'")
    if len(set(public)) != len(public):
        raise ValueError(f"{where}: an operation is listed twice under `public`")
    if set(public) & set(officer):
        raise ValueError(f"{where}: both public and officer: {sorted(set(public) & set(officer))}")
    return Section(
        public=frozenset(public),
        officer={op: _access_of(entry, f"{where}: {op}", declared, scopes) for op, entry in officer.items()},
    )


def load_policy(path: Path = POLICY_PATH) -> Policy:
    raw = yaml.load(path.read_text(), Loader=_StrictLoader)  # a SafeLoader
    if raw.get("version") != 1:
        raise ValueError(f"{path}: unknown version {raw.get('version')!r}")
    roles = raw.get("roles")
    if not isinstance(roles, dict) or ALWAYS_ALLOWED not in roles:
        raise ValueError(f"{path}: `roles` must declare every role, `{ALWAYS_ALLOWED}` included")
    declared = set(roles)
    scopes: dict[str, Scope] = {}
    for name, raw_scope in (raw.get("scopes") or {}).items():
        if not isinstance(raw_scope, dict) or set(raw_scope) - {"role", "claim", "every"}:
            raise ValueError(f"{path}: scopes.{name} has `role`, `claim` and `every` only")
        if raw_scope.get("role") not in declared:
            raise ValueError(f"{path}: scopes.{name}: unknown role {raw_scope.get('role')!r}")
        scopes[name] = Scope(
            role=raw_scope["role"], claim=str(raw_scope["claim"]), every=raw_scope.get("every")
        )
    services: dict[str, ServicePolicy] = {}
    for name, body in (raw.get("services") or {}).items():
        if not isinstance(body, dict) or set(body) - {"public", "officer", "pages"}:
            raise ValueError(f"{path}: services.{name} has `public`, `officer` and `pages` only")
        api = _section({k: v for k, v in body.items() if k != "pages"}, f"{name}", declared, scopes)
        pages = _section(body.get("pages") or {}, f"{name}.pages", declared, scopes)
        services[name] = ServicePolicy(api=api, pages=pages)
    return Policy(roles=tuple(roles), scopes=scopes, services=services)


# ----- requests --------------------------------------------------------------------------


def fill(path: str) -> str:
    """A concrete path for a path template: every parameter becomes a placeholder."""
    return re.sub(r"\{[^}]+\}", PLACEHOLDER, path)


def request_for(service: str, operation: str, *, page: bool) -> dict[str, Any]:
    """What to send to an operation (besides the token): method, path and body."""
    method, path = operation.split(" ", 1)
    if page:
        probe = PAGE_PROBES.get((service, operation), {})
        return {"method": method, "url": fill(path), **probe}
    return {"method": method, "url": fill(path), "json": {}}


async def call(client: httpx.AsyncClient, request: dict[str, Any], auth: dict[str, str]) -> httpx.Response:
    request = dict(request)
    headers = {**request.pop("headers", {}), **auth}
    return await client.request(headers=headers, **request)


def openapi_operations(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """'METHOD /path' -> the OpenAPI operation object."""
    return {
        f"{method.upper()} {path}": operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


def schemaless_routes(app: FastAPI) -> set[str]:
    """'METHOD /path' of every route left out of the OpenAPI schema (HEAD only where a
    route answers nothing but HEAD: Starlette adds it to every GET)."""
    found = set()
    for mount in app.routes:
        if isinstance(mount, Mount):  # a static-files folder: any file under it
            found.add(f"GET {mount.path}/{{path}}")
    for route in iter_route_contexts(app.routes):
        if isinstance(route, Mount) or getattr(route, "include_in_schema", True):
            continue
        methods = route.methods
        if not methods or not route.path:
            raise AssertionError(f"a route without methods or path (mount?): {route!r}: extend the test")
        if "GET" in methods:
            methods = methods - {"HEAD"}
        found |= {f"{m} {route.path}" for m in methods}
    return found


# ----- callers and what each must get --------------------------------------------------------

# The OPD or facility of the documented requests' items, and another one.
IN_SCOPE = {"opd": documented.OPD, "facility": documented.FACILITY}
OUT_OF_SCOPE = {"opd": documented.OTHER_OPD, "facility": documented.OTHER_FACILITY}
# The officer of the tests' realm (tests/identity_support.py) who holds a scoped role
# with a given claim; a scoped role without its claim exists only as a development token.
REALM_OFFICER_WITH_CLAIM = {
    ("opd_officer", documented.OPD): "opd-dpupr",
    ("opd_officer", documented.OTHER_OPD): "opd-dlh",
    ("health_officer", documented.FACILITY): "petugas-rsud",
    ("health_officer", documented.OTHER_FACILITY): "petugas-bayan",
    ("health_officer", "*"): "petugas-dinkes",
}


@dataclass(frozen=True)
class Caller:
    name: str
    role: str | None = None  # None: no token at all
    claim: tuple[str, str] | None = None  # (claim, value) of a scoped role's officer
    realm_officer: str | None = None  # who signs in at the provider for this caller


def callers(policy: Policy, *, provider: bool) -> list[Caller]:
    """Anonymous, each role, and each scoped role with its own claim, another's, the
    all-value where there is one, and none."""
    found = [Caller("anonymous")]
    for role in policy.roles:
        scope = policy.scope_of_role(role)
        if scope is None:
            found.append(Caller(role, role, realm_officer=OFFICER_OF_ROLE.get(role)))  # machine roles: none
            continue
        name = next(n for n, s in policy.scopes.items() if s is scope)
        values = [IN_SCOPE[name], OUT_OF_SCOPE[name], *([scope.every] if scope.every else [])]
        for value in values:
            officer = REALM_OFFICER_WITH_CLAIM[(role, value)]
            found.append(Caller(f"{role} of {value}", role, (scope.claim, value), officer))
        found.append(Caller(f"{role} without `{scope.claim}`", role))
    return [c for c in found if not provider or c.role is None or c.realm_officer]


def expected(policy: Policy, access: Access, caller: Caller) -> str:
    """ "401", "403" or "success"."""
    if caller.role is None:
        return "401"
    if caller.role != ALWAYS_ALLOWED and caller.role not in access.roles:
        return "403"
    scope = policy.scope_of_role(caller.role)
    if scope is not None:
        if caller.claim is None:
            return "403"  # a scoped role without its claim is refused, not shown everything
        if access.scope is not None and policy.scopes[access.scope] is scope:
            _, value = caller.claim
            if value not in (IN_SCOPE[access.scope], scope.every):
                return "403"
    return "success"


def dev_headers(caller: Caller) -> dict[str, str]:
    if caller.role is None:
        return {}
    claims = dict([caller.claim]) if caller.claim else {}
    token = issue_token(
        DEV_AUTH_SECRET,
        subject=f"matrix-{caller.name.replace(' ', '-')}",
        role=caller.role,
        opd=claims.get("opd"),
        facility=claims.get("facility"),
    )
    return {"Authorization": f"Bearer {token}"}


def documented_success(service: str, operation: str, spec_operation: dict[str, Any] | None) -> int:
    if (service, operation) in documented.EXPECTED:
        return documented.EXPECTED[(service, operation)]
    assert spec_operation is not None, f"{service}: {operation}: no OpenAPI entry and no expected answer"
    successes = [int(code) for code in spec_operation.get("responses", {}) if code.startswith("2")]
    assert len(successes) == 1, f"{service}: {operation}: documents {successes or 'no'} success answers"
    return successes[0]


def build_app(
    service: str, kafka_bootstrap: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> FastAPI:
    monkeypatch.setenv("SINERGI_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv(f"{service.upper()}_DATABASE_URL", database_url)
    # Citizens' sessions as a development notification service signs them (tests/citizen_support.py).
    return trust_development_sessions(importlib.import_module(f"services.{service}.app").build())


@asynccontextmanager
async def notification_rig(
    request: pytest.FixtureRequest, infra: Infrastructure, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[dict[str, Any]]:
    """The notification service's outside world: its own consumer group on the domain
    topics, the session's SMTP sink and gateway (which refuses what a request tells it
    to), one attempt per notification, and a producer of domain events."""
    sink = request.getfixturevalue("smtp_sink")
    gateway = request.getfixturevalue("fake_gateway")
    group = await new_group(infra, "matrix", EGOV_TOPICS)  # what the service consumes
    for name, value in {
        "CONSUMER_GROUP": group,
        "SMTP_HOST": sink.host,
        "SMTP_PORT": str(sink.port),
        "SMS_GATEWAY_URL": gateway.sms_url,
        "WHATSAPP_GATEWAY_URL": gateway.whatsapp_url,
        "GATEWAY_TOKEN": GATEWAY_TOKEN,
        "MAX_ATTEMPTS": "1",
        "DELIVERY_INTERVAL_SECONDS": "0.2",
    }.items():
        monkeypatch.setenv(f"NOTIFICATIONS_{name}", value)
    platform: PlatformSettings = request.getfixturevalue("platform")
    # The suite's consumer timings (conftest's `platform`): a group joins in seconds.
    monkeypatch.setenv("SINERGI_CONSUMER_SESSION_TIMEOUT_MS", str(platform.consumer_session_timeout_ms))
    monkeypatch.setenv("SINERGI_CONSUMER_HEARTBEAT_MS", str(platform.consumer_heartbeat_ms))
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
    await producer.start()
    try:
        yield {"platform": platform, "producer": producer, "gateway": gateway}
    finally:
        await producer.stop()
        gateway.reset_failures()


# ----- tests -----------------------------------------------------------------------------

REQUESTS: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def _print_matrix_size() -> Iterator[None]:
    yield
    if REQUESTS:
        per_service = ", ".join(f"{name} {count}" for name, count in REQUESTS.items())
        print(f"\nrole matrix: {sum(REQUESTS.values())} requests ({per_service})")


def test_policy_covers_the_running_services_and_real_roles() -> None:
    policy = load_policy()
    known = {s.name for s in SERVICES}
    assert set(policy.services) <= known, f"unknown services: {set(policy.services) - known}"
    missing = {s.name for s in running_services()} - set(policy.services)
    assert not missing, f"services with no access policy in {POLICY_PATH.name}: {sorted(missing)}"
    assert "opd_officer" in policy.roles, "the OPD officer role (token claim `opd`) is part of the matrix"
    assert {s.role for s in policy.scopes.values()} == {"opd_officer", "health_officer"}
    for name, service in policy.services.items():
        documented_ops = set(documented.BUILDERS.get(name, {}))
        officer_ops = set(service.api.officer) | set(service.pages.officer)
        assert documented_ops == officer_ops, (
            f"{name}: officer operations without a documented request: {sorted(officer_ops - documented_ops)};"
            f" documented requests for no officer operation: {sorted(documented_ops - officer_ops)}"
        )


@pytest.mark.parametrize("tokens", ["development", "provider"])
@pytest.mark.parametrize("service", [s.name for s in running_services()])
async def test_every_route_matches_the_access_policy(
    service: str,
    tokens: str,
    infra: Infrastructure,
    fresh_database: str,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    """Once with development tokens, once as production runs: the service trusting the
    regency's identity provider, each role held by an officer signed in there."""
    policy = load_policy()
    rules = policy.services[service]
    everyone = callers(policy, provider=tokens == "provider")
    if tokens == "provider":
        provider: Provider = request.getfixturevalue("provider")
        monkeypatch.setenv("SINERGI_OIDC_ISSUER", provider.issuer)

        def headers_of(caller: Caller) -> dict[str, str]:
            if caller.realm_officer is None:
                return {}
            return {"Authorization": f"Bearer {provider.recent_token(caller.realm_officer)}"}
    else:
        headers_of = dev_headers
    async with AsyncExitStack() as stack:
        world = (
            await stack.enter_async_context(notification_rig(request, infra, monkeypatch))
            if service == "notifications"
            else {}
        )
        app = build_app(service, infra.kafka_bootstrap, fresh_database, monkeypatch)
        client = await stack.enter_async_context(running(app))
        spec = (await client.get("/openapi.json")).json()
        operations = openapi_operations(spec)

        # (a) every route is in the policy, and everything in the policy is a route
        assert not set(operations) - rules.api.operations, (
            f"{service}: in OpenAPI, not in {POLICY_PATH.name}: {sorted(set(operations) - rules.api.operations)}"
        )
        assert not rules.api.operations - set(operations), (
            f"{service}: in {POLICY_PATH.name}, not in OpenAPI: {sorted(rules.api.operations - set(operations))}"
        )
        pages = schemaless_routes(app)
        assert pages == rules.pages.operations, (
            f"{service}: routes outside the schema, not in {POLICY_PATH.name} `pages`: "
            f"{sorted(pages - rules.pages.operations)}; listed but gone: {sorted(rules.pages.operations - pages)}"
        )

        # (b) the schema tells clients which operations need a token
        undeclared = sorted(op for op in rules.api.officer if not operations[op].get("security"))
        assert not undeclared, f"{service}: officer operations without security in OpenAPI: {undeclared}"
        declared = sorted(op for op in rules.api.public if operations[op].get("security"))
        assert not declared, f"{service}: public operations declaring security in OpenAPI: {declared}"

        # (c) every caller against a real, legal request of every officer operation and page
        state = documented.Running(
            client, app, headers_of(next(c for c in everyone if c.role == ALWAYS_ALLOWED)), **world
        )
        wrong: list[str] = []
        made = 0
        for operation, access in sorted({**rules.api.officer, **rules.pages.officer}.items()):
            build = documented.BUILDERS[service][operation]
            success = documented_success(service, operation, operations.get(operation))
            verdicts = [(caller, expected(policy, access, caller)) for caller in everyone]
            # Refusals first: they must leave the item as it was, so one request serves all.
            verdicts.sort(key=lambda pair: pair[1] == "success")
            prepared: dict[str, Any] | None = await build(state)
            for caller, verdict in verdicts:
                if prepared is None:
                    prepared = await build(state)  # a changed item serves no second caller
                response = await call(client, prepared, headers_of(caller))
                made += 1
                want = success if verdict == "success" else int(verdict)
                if response.status_code != want:
                    wrong.append(
                        f"{operation} as {caller.name}: expected {want} ({verdict}),"
                        f" got {response.status_code} {response.text[:200]}"
                    )
                if verdict == "success":
                    prepared = None
    REQUESTS[f"{service} ({tokens})"] = made
    officer_ops, officer_pages = len(rules.api.officer), len(rules.pages.officer)
    print(
        f"\nrole matrix {service}: ({officer_ops} officer operations + {officer_pages} officer pages)"
        f" × {len(everyone)} callers = {made} requests"
    )
    summary = f"{service}: {len(wrong)} of {made} requests break {POLICY_PATH.name}:"
    assert not wrong, "\n".join([summary, *wrong])
