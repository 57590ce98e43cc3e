"""Open311 GeoReport v2 routes of the complaints service, under /open311/v2/: parse what
the specification sends, call a use case, render the answer as JSON or XML (the path's
`.json` / `.xml`). Errors are the specification's list of {code, description}, in the
format asked for; the mapping itself is in open311.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from services.complaints import handlers, open311
from shared.kit.app import context_dependency
from shared.kit.errors import DomainError, InvalidField, NotFound
from shared.kit.limits import RATE_LIMITED, Limit, Limits, limited

Ctx = Annotated[handlers.Context, Depends(context_dependency(handlers.Context))]
Format = Literal["json", "xml"]
PREFIX = "/open311/v2"
# Reads are public and cheap; counted per client address so one scraper cannot starve
# the rest. Filing is counted per API key (a client application files for many people):
# numbers and reasons in docs/operations.md, "Abuse limits".
READS = Limit("complaints.open311_reads", 600, 3600)
FILING = Limit("complaints.open311_filing", 120, 3600)
# When the API was last changed as its clients see it (discovery's changeset).
CHANGESET = datetime(2026, 12, 6, tzinfo=UTC)
# Refusals the specification names; anything else a use case refuses is a bad request.
_SPEC_STATUSES = {403, 404, 429}


def _format(request: Request) -> str:
    fmt = request.path_params.get("format")
    return fmt if fmt in open311.FORMATS else "json"


def answer(request: Request, document: Any, root: str, status_code: int = 200) -> Response:
    fmt = _format(request)
    return Response(open311.render(document, root, fmt), status_code, media_type=open311.FORMATS[fmt])


def refusal(
    request: Request, status_code: int, descriptions: list[str], headers: dict[str, str] | None = None
) -> Response:
    response = answer(request, open311.errors(status_code, descriptions), "errors", status_code)
    response.headers.update(headers or {})
    return response


class Open311Route(APIRoute):
    """A route answering every refusal as the specification's error list (400 for any
    bad input, 403, 404, 429 with Retry-After), in the format the path asks for."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handle = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handle(request)
            except RequestValidationError as exc:
                found = [(e.get("loc", ()), e.get("msg", "")) for e in exc.errors()]
                return refusal(request, 400, open311.field_descriptions(found))
            except InvalidField as exc:
                return refusal(request, 400, open311.field_descriptions(exc.errors))
            except DomainError as exc:
                status = exc.status_code if exc.status_code in _SPEC_STATUSES else 400
                return refusal(request, status, [exc.message], exc.headers)

        return route


router = APIRouter(prefix=PREFIX, route_class=Open311Route, tags=["open311"])
# Both formats, and the specification's errors, as every route documents them.
_CONTENT = {"content": {"application/json": {}, "text/xml": {}}}
_DOCUMENTED: dict[int | str, dict[str, Any]] = {
    200: {**_CONTENT, "description": "The document, as JSON or XML"},
    400: {**_CONTENT, "description": "Errors: a list of {code, description}"},
    404: {**_CONTENT, "description": "Errors: nothing by that code, id or token"},
    429: {**_CONTENT, "description": "Too many requests", "headers": RATE_LIMITED[429]["headers"]},
}
_READ = {**limited(READS), "response_class": Response, "responses": _DOCUMENTED}


@router.get("/discovery.{format}", **_READ)
async def discovery(format: Format, request: Request) -> Response:
    """The service discovery document: where the GeoReport v2 endpoint is, its formats."""
    base = str(request.base_url).rstrip("/") + PREFIX
    return answer(request, open311.discovery(base, CHANGESET), "discovery")


@router.get("/services.{format}", **_READ)
async def services(format: Format, request: Request, ctx: Ctx) -> Response:
    """One service per complaint category; `group` is the OPD that follows it up."""
    return answer(request, open311.services(ctx.catalogue), "services")


@router.get("/services/{service_code}.{format}", **_READ)
async def service_definition(service_code: str, format: Format, request: Request, ctx: Ctx) -> Response:
    """The attributes a request for this service may carry (`attribute[code]`)."""
    category = ctx.catalogue.categories.get(service_code)
    if category is None:
        raise NotFound(f"no service with service_code {service_code}; see GET services")
    return answer(request, open311.service_definition(category), "service_definition")


@router.post(
    "/requests.{format}",
    response_class=Response,
    responses={**_DOCUMENTED, 403: {**_CONTENT, "description": "api_key missing, unknown or revoked"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": open311.ReportForm.model_json_schema(by_alias=True)
                }
            },
        }
    },
)
async def file_request(format: Format, request: Request, ctx: Ctx, limits: Limits) -> Response:
    """File a complaint as a service request (form-encoded, with `api_key`). The answer
    carries `service_request_id` (the tracking code) and a `token`."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    client = await handlers.client_of(ctx, form.pop("api_key", None))
    await limits.take(FILING, str(client.id))
    cmd = handlers.FileComplaint(**open311.filing(form, ctx.catalogue), locale="id")
    complaint, token = await handlers.file_open311(ctx, cmd, client)
    return answer(request, open311.filed(complaint.tracking_code, token), "service_requests")


@router.get("/tokens/{token}.{format}", **_READ)
async def token(token: UUID, format: Format, request: Request, ctx: Ctx) -> Response:
    """The service_request_id a token stands for."""
    tracking_code = await handlers.open311_token(ctx, token)
    return answer(request, open311.token_answer(token, tracking_code), "service_requests")


async def _requests(ctx: Ctx, query: open311.RequestQuery) -> list[dict[str, Any]]:
    rows = await handlers.open311_requests(ctx, query)
    return [open311.request(row, ctx.catalogue) for row in rows]


@router.get("/requests.{format}", **_READ)
async def list_requests(
    format: Format, request: Request, ctx: Ctx, filters: Annotated[open311.RequestFilters, Depends()]
) -> Response:
    """Requests, newest first: by `service_request_id` (comma list, overriding the rest),
    or by `service_code`, `status` (open, closed) within `start_date`..`end_date` (at most
    90 days; by default the last 90), at most 1000."""
    query = open311.request_query(ctx.clock(), filters)
    return answer(request, await _requests(ctx, query), "service_requests")


@router.get("/requests/{service_request_id}.{format}", **_READ)
async def get_request(service_request_id: str, format: Format, request: Request, ctx: Ctx) -> Response:
    """One request by its service_request_id (the tracking code), as a list of one."""
    missing = NotFound(f"no request with service_request_id {service_request_id}")
    if "," in service_request_id:
        raise missing
    found = await _requests(
        ctx, open311.request_query(ctx.clock(), open311.RequestFilters(service_request_id))
    )
    if not found:
        raise missing
    return answer(request, found, "service_requests")
