"""Security headers of server-rendered pages, one policy for every service that has
pages: the integration view through `SecurityHeaders`, the portal through its own edge
middleware (which also keeps the visitor's session), both with `page_headers`.

- Content-Security-Policy: scripts, style sheets, fonts and live connections from the
  page's own origin only — no inline script, no inline style (not even a `style=`
  attribute), no plug-ins, never framed, forms post only to the site, no `<base>`.
- `Referrer-Policy: no-referrer`: tracking pages carry codes in their address; no address
  leaves the site in a Referer header.
- `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` (older browsers), and a
  Permissions-Policy that turns off what pages do not use.

`SecurityHeaders` is a pure ASGI middleware, so streamed answers (Server-Sent Events)
pass through unbuffered: `app.add_middleware(SecurityHeaders)`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
    ]
)
# Browser features a page may use from its own origin only (the portal: geolocation);
# every other one listed here is off.
FEATURES = ("camera", "microphone", "geolocation")
# FastAPI's interactive API documentation loads Swagger UI and ReDoc with inline scripts
# from a CDN: it cannot work under PAGE_CSP and is not a page of the site.
API_DOCS_PATHS = ("/docs", "/redoc")


def page_headers(*, own_features: Collection[str] = (), form_targets: Collection[str] = ()) -> dict[str, str]:
    """The headers of every page; `own_features` are the FEATURES the pages use, and
    `form_targets` origins besides the site's own a form's answer may redirect to (the
    officers' sign-out ends the identity provider's session too: a browser applies
    form-action to every redirect after a form is sent)."""
    unknown = set(own_features) - set(FEATURES)
    if unknown:
        raise ValueError(f"not a feature of the policy: {sorted(unknown)}")
    permissions = ", ".join(f"{f}=(self)" if f in own_features else f"{f}=()" for f in FEATURES)
    csp = PAGE_CSP
    if form_targets:
        csp = csp.replace("form-action 'self'", " ".join(["form-action 'self'", *form_targets]))
    return {
        "Content-Security-Policy": csp,
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Permissions-Policy": permissions,
    }


class SecurityHeaders:
    """Adds the page headers to every HTTP answer except the API documentation's."""

    def __init__(
        self,
        app: ASGIApp,
        headers: Mapping[str, str] | None = None,
        exempt: Collection[str] = API_DOCS_PATHS,
    ) -> None:
        self.app = app
        self.headers = dict(headers if headers is not None else page_headers())
        self.exempt = tuple(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._exempt(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, with_headers)

    def _exempt(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in self.exempt)
