"""Abuse limits of anonymous writes, shared by every instance of a service.

A rule is a `Limit` (at most `count` requests per `per_seconds`) applied per key: a
client address, a NIK, a contact. The state lives in the service's own PostgreSQL
database (kit migration 005), so two instances behind the edge proxy count together,
and one statement per check keeps it exact under concurrency: the generic cell rate
algorithm (GCRA) keeps, per (rule, key), the theoretical arrival time `tat`; a request is
let through when, after adding one emission interval (`per_seconds / count`), `tat` is
at most `per_seconds` ahead of now. A full burst of `count` is allowed, then one request
per interval. Keys are keyed hashes (HMAC with the deployment's citizen reference key),
never an address, phone number, email address or NIK in clear.

Routes apply rules as FastAPI dependencies, before their use case runs (so a refused
request writes nothing): `@router.post(..., **limited(RULE))` counts per client address
and documents the 429; a rule on a body field (a NIK) is a dependency of the service
taking `Limits`, given to `limited` after the rule.

Every refusal of a route's rule counts in `sinergi_rate_limited_total{rule}` (the kit's
metrics), so operators see a rule biting (alert SinergiRateLimitedSpike).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
from dataclasses import dataclass, replace
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request
from fastapi.params import Depends as DependsParam
from prometheus_client import Counter
from pydantic import BaseModel

from shared.kit.errors import RateLimited
from shared.kit.settings import PlatformSettings

__all__ = [
    "RATE_LIMITED",
    "Limit",
    "Limiter",
    "Limits",
    "RateLimited",
    "client_address",
    "configured",
    "limit_key",
    "limited",
    "per_client",
    "prune",
    "take",
]

log = logging.getLogger(__name__)
_KEY = re.compile(r"[0-9a-f]{32}")
# Domain separation: the same key as citizen references, never the same digest.
_KEY_CONTEXT = b"sinergi-rate-limit\x00"


@dataclass(frozen=True)
class Limit:
    """A rule: at most `count` requests per `per_seconds` for one key. `name` (dotted,
    service first) is how SINERGI_RATE_LIMITS overrides it and how docs name it."""

    name: str
    count: int
    per_seconds: float

    def __post_init__(self) -> None:
        if self.count < 1 or self.per_seconds <= 0:
            raise ValueError(f"{self.name}: a limit needs count >= 1 and per_seconds > 0")


def configured(limit: Limit, platform: PlatformSettings) -> Limit:
    """`limit` as this deployment sets it: SINERGI_RATE_LIMITS by name, then the factor."""
    rate = platform.rate_limits.get(limit.name)
    if rate is not None:
        limit = replace(limit, count=rate.count, per_seconds=rate.per_seconds)
    return replace(limit, count=max(1, round(limit.count * platform.rate_limit_factor)))


def limit_key(platform: PlatformSettings, value: str) -> str:
    """The key a rule counts under for `value` (an address, a NIK, a contact): a keyed
    hash, so the table holds nothing that names a person or a client."""
    secret = platform.citizen_ref_key.get_secret_value().encode()
    return hmac.new(secret, _KEY_CONTEXT + value.encode(), hashlib.sha256).hexdigest()[:32]


# One statement: insert the first request's arrival, or move `tat` on by one interval
# when that stays within the window, under the row's lock (concurrent takes of one key
# queue on it, so exactly `count` of a burst pass). `granted` records which it was; the
# SET expressions all read the row as it was before this statement.
_TAKE = """
INSERT INTO rate_limit AS r (name, key, tat, granted)
VALUES ($1, $2, statement_timestamp() + make_interval(secs => $3), true)
ON CONFLICT (name, key) DO UPDATE SET
    granted = greatest(r.tat, statement_timestamp()) + make_interval(secs => $3)
              <= statement_timestamp() + make_interval(secs => $4),
    tat = CASE
        WHEN greatest(r.tat, statement_timestamp()) + make_interval(secs => $3)
             <= statement_timestamp() + make_interval(secs => $4)
        THEN greatest(r.tat, statement_timestamp()) + make_interval(secs => $3)
        ELSE r.tat
    END
RETURNING granted,
    extract(epoch FROM tat + make_interval(secs => $3) - make_interval(secs => $4) - statement_timestamp())
        AS wait
"""


async def take(conn_or_pool: asyncpg.Connection | asyncpg.Pool, limit: Limit, key: str) -> None:
    """Count one request of `key` under `limit`, or raise `RateLimited` with the seconds
    until one would pass. `key` comes from `limit_key`. Run it outside the write's
    transaction: a refused or failed request still counts (probing costs too)."""
    if not _KEY.fullmatch(key):
        raise ValueError("a rate-limit key is limit_key(...) of the value, never the value itself")
    interval = limit.per_seconds / limit.count
    row = await conn_or_pool.fetchrow(_TAKE, limit.name, key, interval, limit.per_seconds)
    if not row["granted"]:
        log.info("rate limited", extra={"rule": limit.name})
        raise RateLimited(max(1, math.ceil(float(row["wait"]))))


async def prune(conn_or_pool: asyncpg.Connection | asyncpg.Pool) -> int:
    """Delete rows whose arrival time has passed (they mean the same as none)."""
    status = await conn_or_pool.execute("DELETE FROM rate_limit WHERE tat < statement_timestamp()")
    return int(status.split()[-1])


def client_address(request: Request, trusted: list[IPv4Network | IPv6Network]) -> str:
    """The client's address: the direct peer, unless the peer is a trusted proxy; then
    the last X-Forwarded-For entry no trusted proxy added (the proxy appends the address
    it saw, so entries to its left are whatever the client chose to send)."""
    peer = request.client.host if request.client else ""
    if not _is_trusted(peer, trusted):
        return peer
    hops = [h.strip() for v in request.headers.getlist("x-forwarded-for") for h in v.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _is_trusted(address: str, trusted: list[IPv4Network | IPv6Network]) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in trusted)


@dataclass(frozen=True)
class Limiter:
    """The rules of one request: the service's pool and settings, the client's address,
    and the counter of refusals (sinergi_rate_limited_total)."""

    pool: asyncpg.Pool
    platform: PlatformSettings
    client: str
    refused: Counter

    async def take(self, limit: Limit, value: str) -> None:
        """Count this request under `limit` for `value` (hashed here), as configured; a
        refusal is counted under the rule's name before the 429 goes out."""
        try:
            await take(self.pool, configured(limit, self.platform), limit_key(self.platform, value))
        except RateLimited:
            self.refused.labels(limit.name).inc()
            raise


async def limiter(request: Request) -> Limiter:
    service = request.app.state.service
    platform: PlatformSettings = service.settings.platform
    return Limiter(
        service.pool,
        platform,
        client_address(request, platform.trusted_proxies),
        service.metrics.rate_limited,
    )


Limits = Annotated[Limiter, Depends(limiter)]


def per_client(limit: Limit) -> DependsParam:
    """A route dependency counting each request under `limit` per client address."""

    async def dependency(limits: Limits) -> None:
        await limits.take(limit, limits.client)

    return Depends(dependency)


class RateLimitedOut(BaseModel):
    detail: str


# What a limited route documents in OpenAPI, beside its own answers.
RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {
        "model": RateLimitedOut,
        "description": "Too many requests from this client address (or for this NIK or contact)",
        "headers": {
            "Retry-After": {
                "description": "Seconds until a request would pass",
                "schema": {"type": "integer"},
            }
        },
    }
}


def limited(limit: Limit, *more: Any) -> dict[str, Any]:
    """A limited route's keyword arguments: its requests counted under `limit` per client
    address (and under `more` limit dependencies, e.g. per NIK), and the 429 documented."""
    return {"dependencies": [per_client(limit), *more], "responses": RATE_LIMITED}
