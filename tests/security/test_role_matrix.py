"""Every route of every service against the documented access policy, docs/access.yaml.

The policy is written by hand from the documentation, not derived from the code under
test. For each running service, built in-process on a fresh database:

(a) the OpenAPI operations are exactly the policy's `public` + `officer`, and the routes
    left out of the schema (pages, static files, the docs UI) exactly its `pages`;
(b) every officer operation declares security in OpenAPI, and no public one does;
(c) every officer operation and officer page answers 401 without a token, exactly 403 to
    each real role the policy does not list, and neither 401 nor 403 to each role it lists
    (`admin` is always allowed); never a 5xx.

Placeholder path ids and `{}` bodies are sent, so an allowed role gets 404, 422 or 200:
what matters is that the role check let it through. The matrix size is printed
(`pytest -s`). tests/security/test_auth_every_route.py uses the same policy to walk every
non-public operation with bad tokens.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount

from shared.kit.auth import issue_token
from shared.kit.settings import DEV_AUTH_SECRET
from shared.runtime.select import Infrastructure
from shared.runtime.topology import SERVICES, running_services
from tests.harness import repo_root, running
from tests.identity_support import OFFICER_OF_ROLE, Provider

POLICY_PATH = repo_root() / "docs" / "access.yaml"
ALWAYS_ALLOWED = "admin"  # require_role accepts it on every officer route
OPD = "DPUPR"  # the `opd` claim of the opd_officer token
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

# Operations whose allowed callers get a request that stops after the role check (a
# validation error), because running them would start a long operator job.
STOP_AFTER_ROLE_CHECK: dict[str, dict[str, Any]] = {
    "POST /admin/rebuild": {"params": {"timeout": "0"}},  # timeout must be > 0: 422
}


# ----- the policy ------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """`public` and `officer` of one service's operations or pages."""

    public: frozenset[str]
    officer: Mapping[str, frozenset[str]]  # operation -> roles allowed besides admin

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
    services: Mapping[str, ServicePolicy]


class _StrictLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice (plain YAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        twice = sorted({str(k) for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(f"{POLICY_PATH.name} line {node.start_mark.line + 1}: listed twice: {twice}")
        return super().construct_mapping(node, deep=deep)


def _roles_of(entry: Any, where: str, declared: set[str]) -> frozenset[str]:
    if isinstance(entry, dict):
        unknown = set(entry) - {"roles"}
        if unknown:
            # e.g. `scope:` (OPD or facility of the officer): refused until this test
            # checks it too, so nobody reads the policy as enforcing what is not checked.
            raise ValueError(f"{where}: {sorted(unknown)} not supported yet (only `roles`)")
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
    return frozenset(roles)


def _section(raw: Any, where: str, declared: set[str]) -> Section:
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
        officer={op: _roles_of(roles, f"{where}: {op}", declared) for op, roles in officer.items()},
    )


def load_policy(path: Path = POLICY_PATH) -> Policy:
    raw = yaml.load(path.read_text(), Loader=_StrictLoader)  # a SafeLoader
    if raw.get("version") != 1:
        raise ValueError(f"{path}: unknown version {raw.get('version')!r}")
    roles = raw.get("roles")
    if not isinstance(roles, dict) or ALWAYS_ALLOWED not in roles:
        raise ValueError(f"{path}: `roles` must declare every role, `{ALWAYS_ALLOWED}` included")
    declared = set(roles)
    services: dict[str, ServicePolicy] = {}
    for name, body in (raw.get("services") or {}).items():
        if not isinstance(body, dict) or set(body) - {"public", "officer", "pages"}:
            raise ValueError(f"{path}: services.{name} has `public`, `officer` and `pages` only")
        api = _section({k: v for k, v in body.items() if k != "pages"}, f"{name}", declared)
        pages = _section(body.get("pages") or {}, f"{name}.pages", declared)
        services[name] = ServicePolicy(api=api, pages=pages)
    return Policy(roles=tuple(roles), services=services)


# ----- requests --------------------------------------------------------------------------


def fill(path: str) -> str:
    """A concrete path for a path template: every parameter becomes a placeholder."""
    return re.sub(r"\{[^}]+\}", PLACEHOLDER, path)


def role_headers(role: str) -> dict[str, str]:
    # In scope everywhere (test_officer_scope.py checks the scope itself): an OPD officer
    # of one OPD, a health officer of every facility.
    token = issue_token(
        DEV_AUTH_SECRET,
        subject=f"matrix-{role}",
        role=role,
        opd=OPD if role == "opd_officer" else None,
        facility="*" if role == "health_officer" else None,
    )
    return {"Authorization": f"Bearer {token}"}


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


@dataclass(frozen=True)
class Case:
    operation: str
    caller: str  # "anonymous" or a role
    expected: str  # "401", "403" or "allowed"


def cases(policy: Policy, section: Section) -> Iterator[Case]:
    for operation, roles in sorted(section.officer.items()):
        allowed = roles | {ALWAYS_ALLOWED}
        yield Case(operation, "anonymous", "401")
        for role in policy.roles:
            yield Case(operation, role, "allowed" if role in allowed else "403")


def verdict(case: Case, status: int) -> bool:
    if status >= 500:
        return False
    if case.expected == "allowed":
        return status not in (401, 403)
    return status == int(case.expected)


def build_app(
    service: str, kafka_bootstrap: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> FastAPI:
    monkeypatch.setenv("SINERGI_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv(f"{service.upper()}_DATABASE_URL", database_url)
    return importlib.import_module(f"services.{service}.app").build()


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
    if tokens == "provider":
        provider: Provider = request.getfixturevalue("provider")
        monkeypatch.setenv("SINERGI_OIDC_ISSUER", provider.issuer)

        def headers_of(role: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {provider.recent_token(OFFICER_OF_ROLE[role])}"}
    else:
        headers_of = role_headers
    app = build_app(service, infra.kafka_bootstrap, fresh_database, monkeypatch)
    async with running(app) as client:
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

        # (c) anonymous, and each real role, against every officer operation and page
        callers = {"anonymous": {}, **{role: headers_of(role) for role in policy.roles}}
        wrong: list[str] = []
        made = 0
        for section, page in ((rules.api, False), (rules.pages, True)):
            for case in cases(policy, section):
                request = request_for(service, case.operation, page=page)
                if case.expected == "allowed" and case.operation in STOP_AFTER_ROLE_CHECK and not page:
                    request = {**request, **STOP_AFTER_ROLE_CHECK[case.operation]}
                response = await call(client, request, callers[case.caller])
                made += 1
                if not verdict(case, response.status_code):
                    wrong.append(
                        f"{case.operation} as {case.caller}: expected {case.expected},"
                        f" got {response.status_code} {response.text[:200]}"
                    )
    REQUESTS[f"{service} ({tokens})"] = made
    officer_ops, officer_pages = len(rules.api.officer), len(rules.pages.officer)
    print(
        f"\nrole matrix {service}: ({officer_ops} officer operations + {officer_pages} officer pages)"
        f" × {len(callers)} callers = {made} requests"
    )
    summary = f"{service}: {len(wrong)} of {made} requests break {POLICY_PATH.name}:"
    assert not wrong, "\n".join([summary, *wrong])
