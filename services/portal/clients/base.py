"""What every upstream client shares: timeouts, retries for idempotent reads only, and
the two outcomes a page must tell apart (the service refused, the service is away)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from shared.kit import tracing
from shared.kit.attachments import MediaType

log = logging.getLogger(__name__)
# What a service's file may be to be passed on (what the services keep).
KEPT_TYPES = frozenset(m.value for m in MediaType)
# httpx logs every request line at INFO; the portal's carry tracking codes (a citizen's
# key to their case), which stay out of the logs.
logging.getLogger("httpx").setLevel(logging.WARNING)
# A read is tried this many times (a service restarting answers again within a second);
# a write once: the citizen, not the portal, decides to send again.
GET_ATTEMPTS = 3
GET_BACKOFF_SECONDS = 0.3
# The citizen's address, set for each page request by the app. The services count their
# abuse limits per client address; without it every citizen would be the portal's one
# address (and share one limit). The services trust it from the portal as from the edge
# (SINERGI_TRUSTED_PROXIES).
CITIZEN_ADDRESS: ContextVar[str | None] = ContextVar("citizen_address", default=None)


def _headers(given: dict[str, str] | None) -> dict[str, str]:
    """The citizen's address, and the page request's trace so the service's spans join
    it (tracing on only)."""
    address = CITIZEN_ADDRESS.get()
    return {
        **({"X-Forwarded-For": address} if address else {}),
        **tracing.outgoing_headers(),
        **(given or {}),
    }


class Unavailable(Exception):
    """The service did not answer, or answered with a server error."""

    def __init__(self, service: str) -> None:
        super().__init__(f"{service} is unavailable")
        self.service = service


class Limited(Exception):
    """The service answered 429: the citizen may try again after `retry_after` seconds."""

    def __init__(self, service: str, retry_after: int) -> None:
        super().__init__(f"{service} limited the request")
        self.service = service
        self.retry_after = retry_after


class Refused(Exception):
    """The service answered 4xx: field messages by field name (the last part of `loc`),
    or a general message under ''."""

    def __init__(self, status: int, messages: dict[str, str]) -> None:
        super().__init__(f"refused with {status}")
        self.status = status
        self.messages = messages


def _messages(response: httpx.Response) -> dict[str, str]:
    try:
        detail = response.json().get("detail")
    except ValueError:
        return {"": response.reason_phrase}
    if isinstance(detail, list):
        found: dict[str, str] = {}
        for error in detail:
            loc = [str(part) for part in error.get("loc", ()) if not str(part).isdigit()]
            found.setdefault(loc[-1] if loc else "", str(error.get("msg", "")))
        return found
    return {"": str(detail)}


def _retry_after(response: httpx.Response) -> int:
    try:
        return max(1, int(response.headers.get("retry-after", "")))
    except ValueError:
        return 60


def bearer(session: str) -> dict[str, str]:
    """The header a citizen session travels in (never in an address)."""
    return {"Authorization": f"Bearer {session}"}


@dataclass(frozen=True)
class Download:
    """A file on its way from a service: its type as the service gave it, its bytes as
    they arrive, and the way to let the connection go."""

    media_type: MediaType
    chunks: AsyncIterator[bytes]
    close: Callable[[], Awaitable[None]]


class Upstream:
    """An HTTP client of one service, by name (for the page that says it is away): a
    subclass names its service (`name`) and adds the service's calls."""

    name: ClassVar[str]

    def __init__(self, base_url: str, timeout: float) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url, timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0))
        )

    async def get(self, path: str, **request: Any) -> Any | None:
        """The JSON answer, None for 404; retried on a transport error or a 5xx."""
        for attempt in range(1, GET_ATTEMPTS + 1):
            try:
                response = await self.http.get(
                    path, **{**request, "headers": _headers(request.get("headers"))}
                )
            except httpx.TransportError as exc:
                failure = type(exc).__name__
            else:
                if response.status_code == 404:
                    return None
                if response.status_code < 500:
                    return self._json(response)
                failure = f"HTTP {response.status_code}"
            if attempt < GET_ATTEMPTS:
                await asyncio.sleep(GET_BACKOFF_SECONDS * attempt)
        log.warning("upstream unavailable", extra={"upstream": self.name, "error": failure})
        raise Unavailable(self.name)

    async def post(self, path: str, **request: Any) -> Any:
        """One attempt: the JSON answer of a 2xx, `Refused` for 4xx, else `Unavailable`."""
        return await self.write("POST", path, **request)

    async def write(self, method: str, path: str, **request: Any) -> Any:
        """A request that changes something, as `post` sends it (PUT too)."""
        try:
            request["headers"] = _headers(request.get("headers"))
            response = await self.http.request(method, path, **request)
        except httpx.TransportError as exc:
            log.warning("upstream unavailable", extra={"upstream": self.name, "error": type(exc).__name__})
            raise Unavailable(self.name) from exc
        if response.status_code >= 500:
            log.warning("upstream unavailable", extra={"upstream": self.name, "error": response.status_code})
            raise Unavailable(self.name)
        return self._json(response)

    async def open_file(self, path: str, headers: dict[str, str]) -> Download | None:
        """A file the service keeps, its body not yet read (the caller streams it on, then
        closes it): None for 404, `Refused` for another 4xx, else `Unavailable` (a 5xx,
        or a type the services never keep)."""
        try:
            response = await self.http.send(
                self.http.build_request("GET", path, headers=_headers(headers)), stream=True
            )
        except httpx.TransportError as exc:
            log.warning("upstream unavailable", extra={"upstream": self.name, "error": type(exc).__name__})
            raise Unavailable(self.name) from exc
        if response.is_success and response.headers.get("content-type") in KEPT_TYPES:
            return Download(
                MediaType(response.headers["content-type"]), response.aiter_bytes(), response.aclose
            )
        await response.aread()
        await response.aclose()
        if response.status_code == 404:
            return None
        if response.is_success or response.status_code >= 500:
            # A file of another type than the services keep is no answer to pass on.
            log.warning("upstream unavailable", extra={"upstream": self.name, "error": response.status_code})
            raise Unavailable(self.name)
        return self._json(response)

    def _json(self, response: httpx.Response) -> Any:
        if response.is_success:
            return response.json()
        if response.status_code == 429:
            raise Limited(self.name, _retry_after(response))
        raise Refused(response.status_code, _messages(response))

    async def close(self) -> None:
        await self.http.aclose()
