"""Use cases of the integration view: apply an event to the read models (the consumer's
handler), and assemble what the pages and the JSON API show."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from services.integration import domain, repository
from services.integration.feed import FeedHub
from services.integration.masterplan import Masterplan
from services.integration.rebuild import Progress, reread
from services.integration.repository import ReadModel
from services.integration.texts import with_titles
from shared.kit import audit
from shared.kit.clock import utc_now
from shared.kit.consumer import IdempotentConsumer
from shared.kit.data_keys import DataKeyClient, producer_of
from shared.kit.errors import Conflict
from shared.reference import all_desa, all_kecamatan, find_desa, find_kecamatan
from shared.schemas import ParsedEvent
from shared.schemas.privacy import CitizenDataErased

log = logging.getLogger(__name__)


# ----- the consumer's handler -----------------------------------------------------------


async def apply_event(
    conn: asyncpg.Connection, event: ParsedEvent, text_keys: DataKeyClient | None = None
) -> None:
    """Called by the kit's IdempotentConsumer inside the inbox transaction, for one record
    (the fallback when a batch fails, and dead-letter replay)."""
    _forget_on_erasure([event], text_keys)
    projection = _project(event)
    if projection is not None:
        await ReadModel(conn).apply(projection)


async def apply_events(
    conn: asyncpg.Connection, events: Sequence[ParsedEvent], text_keys: DataKeyClient | None = None
) -> None:
    """The set-based form of `apply_event` for a batch of fresh events (delivery order):
    the same read model in a constant number of round trips."""
    _forget_on_erasure(events, text_keys)
    projections = [p for p in map(_project, events) if p is not None]
    if projections:
        await ReadModel(conn).apply_many(projections)


def _forget_on_erasure(events: Sequence[ParsedEvent], text_keys: DataKeyClient | None) -> None:
    """The text keys kept in memory go when an erasure is read: the citizen's key is gone
    at its producer, and which kept keys were theirs is not known here."""
    if text_keys is not None and any(isinstance(e.data, CitizenDataErased) for e in events):
        text_keys.forget()


def _project(event: ParsedEvent) -> domain.Projection | None:
    envelope = event.envelope
    return domain.project(
        event_id=envelope.id,
        event_type=envelope.type,
        time=envelope.time,
        subject=envelope.subject,
        data=event.data,
        producer=producer_of(envelope.source),
    )


# ----- context --------------------------------------------------------------------------


@dataclass
class Context:
    pool: Callable[[], asyncpg.Pool]
    masterplan: Masterplan
    citizen_ref_key: str  # turns an officer's NIK lookup into the citizen reference
    consumer: Callable[[], IdempotentConsumer]  # the consumer a rebuild re-reads the topics through
    clock: Callable[[], datetime] = utc_now
    lag: Callable[[], dict[str, int]] = dict  # events per topic not yet applied
    rebuilding: bool = False
    feed: FeedHub | None = None  # the live feed (absent in a rebuild run)
    text_keys: DataKeyClient | None = None  # opens what citizens wrote (never a contact)
    rebuild_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _cache: tuple[Any, dict[str, Any]] | None = None
    _cache_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def timezone(self) -> str:
        return self.masterplan.timezone.key


# ----- dashboard ------------------------------------------------------------------------


async def dashboard(ctx: Context) -> dict[str, Any]:
    """Everything the dashboard shows (language-neutral: names as {id, en}), and how far
    the view is behind each topic. Cached until a new event arrives or the minute changes."""
    return {**await _cached_dashboard(ctx), "lag": ctx.lag()}


async def _cached_dashboard(ctx: Context) -> dict[str, Any]:
    now = ctx.clock()
    async with ctx.pool().acquire() as conn:
        seq = await ReadModel(conn).max_seq()
    key = (seq, now.replace(second=0, microsecond=0), ctx.rebuilding)
    if ctx._cache is not None and ctx._cache[0] == key:
        return ctx._cache[1]
    async with ctx._cache_lock:
        if ctx._cache is not None and ctx._cache[0] == key:
            return ctx._cache[1]
        async with ctx.pool().acquire() as conn:
            data = await _assemble(ctx, ReadModel(conn), now)
        data["seq"] = seq
        ctx._cache = (key, data)
        return data


async def _assemble(ctx: Context, model: ReadModel, now: datetime) -> dict[str, Any]:
    plan = ctx.masterplan
    open_by_dimension = await model.open_by_dimension()
    indicators: dict[str, dict[str, Any]] = {}
    for ind in plan.indicators:
        periods = domain.windows(ind.period, now, plan.timezone, ind.trend)
        trend = []
        for window in periods:
            row = await model.indicator(ind.function.name, ind.params, window)
            value = ind.function.value(ind.params, row)
            trend.append({"label": window.label, "start": window.start, "end": window.end, "value": value})
        actual = trend[-1]["value"]
        indicators[ind.code] = {
            "code": ind.code,
            "name": ind.name,
            "description": ind.description,
            "function": ind.function.name,
            "params": ind.params.model_dump(exclude_defaults=True),
            "unit": ind.unit,
            "target": ind.target,
            "direction": ind.direction,
            "period": ind.period,
            "dimension": ind.dimension,
            "programme": ind.programme,
            "actual": actual,
            "assessment": domain.assess(actual, ind.target, ind.direction),
            "attainment": domain.attainment(actual, ind.target, ind.direction),
            "trend": trend,
        }
    dimensions = []
    for dim in plan.dimensions:
        programmes = []
        for prog in plan.programmes:
            mine = [indicators[i.code] for i in prog.indicators if i.dimension == dim.code]
            if not mine:
                continue
            programmes.append(
                {
                    "code": prog.code,
                    "name": prog.name,
                    "dimension": prog.dimension,
                    "rpjmd": prog.rpjmd,
                    "apbd": prog.apbd,
                    "opd": prog.opd,
                    "budget_idr": prog.budget_idr,
                    "indicators": mine,
                }
            )
        assessed = [i["assessment"] for p in programmes for i in p["indicators"]]
        dimensions.append(
            {
                "code": dim.code,
                "name": dim.name,
                "description": dim.description,
                "items_open": open_by_dimension.get(dim.code, 0),
                "indicators_met": assessed.count("met"),
                "indicators_total": len(assessed),
                "programmes": programmes,
            }
        )
    since_local = (now.astimezone(plan.timezone) - timedelta(days=13)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    daily_rows = await model.daily_counts(since_local.astimezone(UTC), ctx.timezone)
    days = [(since_local + timedelta(days=n)).date() for n in range(14)]
    per_day: dict[Any, dict[str, int]] = {d: {} for d in days}
    for r in daily_rows:
        if r["day"] in per_day:
            per_day[r["day"]][r["domain"]] = r["n"]
    return {
        "generated_at": now,
        "rebuilding": ctx.rebuilding,
        "masterplan": {
            "name": plan.name,
            "period": plan.period,
            "region": plan.region,
            "source": plan.source.rsplit("/", 1)[-1],
            "dimensions": [d.code for d in plan.dimensions],
        },
        "dimensions": dimensions,
        "opds": _opd_table(await model.opd_stats()),
        "kecamatan": _kecamatan_grid(await model.region_counts()),
        "daily": [{"day": d, "counts": per_day[d], "total": sum(per_day[d].values())} for d in days],
        "feed": [
            domain.public_feed_entry(r)
            for r in reversed(await with_titles(ctx.text_keys, await model.feed(limit=20)))
        ],
    }


async def opd_table(ctx: Context) -> list[dict[str, Any]]:
    async with ctx.pool().acquire() as conn:
        return _opd_table(await ReadModel(conn).opd_stats())


def _opd_table(rows: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [
        {
            "opd": r["opd"],
            "open": r["open"],
            "done": r["done"],
            "within_sla": r["within_sla"],
            "compliance": domain.ratio(r["within_sla"], r["done"]),
            "median_handling_hours": None if r["median_seconds"] is None else r["median_seconds"] / 3600.0,
            "breached_items": r["breached_items"],
            "breaches": r["breaches"],
        }
        for r in rows
    ]


async def kecamatan_grid(ctx: Context) -> list[dict[str, Any]]:
    async with ctx.pool().acquire() as conn:
        return _kecamatan_grid(await ReadModel(conn).region_counts())


def _kecamatan_grid(rows: list[asyncpg.Record]) -> list[dict[str, Any]]:
    counts: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
    for r in rows:
        counts[r["kecamatan_code"]][r["domain"]] = {"open": r["open"], "total": r["total"]}
    cells = []
    for index, kec in enumerate(all_kecamatan()):
        by_domain = counts.get(kec.code, {})
        row, col = domain.grid_position(kec.code, index)
        cells.append(
            {
                "code": kec.code,
                "name": kec.name,
                "row": row,
                "col": col,
                "open": sum(c["open"] for c in by_domain.values()),
                "total": sum(c["total"] for c in by_domain.values()),
                "by_domain": by_domain,
            }
        )
    highest = max((c["open"] for c in cells), default=0)
    for cell in cells:
        cell["shade"] = domain.shade(cell["open"], highest)
    return cells


async def kecamatan_detail(ctx: Context, code: str) -> dict[str, Any] | None:
    kec = find_kecamatan(code)
    if kec is None:
        return None
    async with ctx.pool().acquire() as conn:
        rows = await ReadModel(conn).desa_counts(code)
    names = {d.code: d.name for d in all_desa() if d.kecamatan_code == code}
    desa: dict[str, dict[str, Any]] = {}
    for r in rows:
        entry = desa.setdefault(
            r["desa_code"],
            {
                "code": r["desa_code"] or None,
                "name": names.get(r["desa_code"]),
                "open": 0,
                "total": 0,
                "by_domain": {},
                "by_category": {},
            },
        )
        groups = [entry, entry["by_domain"].setdefault(r["domain"], {"open": 0, "total": 0})]
        if r["category"]:
            groups.append(entry["by_category"].setdefault(r["category"], {"open": 0, "total": 0}))
        for counts in groups:
            counts["open"] += r["open"]
            counts["total"] += r["total"]
    return {"code": kec.code, "name": kec.name, "desa": list(desa.values())}


# ----- tracking (public) and citizen timeline (officers) --------------------------------


def region_name(desa_code: str | None, kecamatan_code: str | None) -> str | None:
    desa = find_desa(desa_code) if desa_code else None
    if desa is not None:
        return f"{desa.name}, {desa.kecamatan_name}"
    kecamatan = find_kecamatan(kecamatan_code) if kecamatan_code else None
    return kecamatan.name if kecamatan else None


def _public_item(row: Mapping[str, Any]) -> dict[str, Any]:
    confidential = row["confidential"]
    return {
        "code": row["code"],
        "domain": row["domain"],
        "aggregate": row["aggregate"],
        "status": row["status"],
        "phase": row["phase"],
        "category": row["category"],
        "opd": row["opd"],
        "facility": row["facility"],
        "kecamatan_code": row["kecamatan_code"],
        "desa_code": row["desa_code"],
        "region_name": region_name(row["desa_code"], row["kecamatan_code"]),
        "confidential": confidential,
        "title": domain.public_title(
            row["domain"], row["status"], confidential=confidential, title=row["title"]
        ),
        "title_withheld": domain.title_withheld(
            row["domain"], row["status"], confidential=confidential, title=row["title"]
        ),
        "opened_at": row["opened_at"],
        "done_at": row["done_at"],
        "updated_at": row["last_event_at"],
    }


def _history_entry(row: asyncpg.Record) -> dict[str, Any]:
    detail = dict(row["detail"] or {})
    public = {
        k: detail[k] for k in ("clock", "channel", "queue_code", "permit_number", "rating") if k in detail
    }
    return {
        "at": row["at"],
        "domain": row["domain"],
        "aggregate": row["aggregate"],
        "action": row["action"],
        "status": row["status"],
        "detail": public,
    }


async def track(ctx: Context, code: str) -> dict[str, Any] | None:
    """Status of one tracking / booking code, as typed, and what happened to the case
    (domain.case_history): public fields only. None for an unknown code or one that
    cannot be a code."""
    known = domain.lookup_code(code)
    if known is None:
        return None
    async with ctx.pool().acquire() as conn:
        model = ReadModel(conn)
        item = await model.item(known)
        if item is None:
            return None
        history = await model.history_of(known)
    steps = domain.case_history(item["domain"], history)
    [shown] = await with_titles(ctx.text_keys, [item])
    return {**_public_item(shown), "history": [_history_entry(h) for h in steps]}


async def timeline(ctx: Context, ref: str) -> dict[str, Any]:
    """One citizen's history across services, for an officer: an audited read."""
    async with ctx.pool().acquire() as conn:
        model = ReadModel(conn)
        items = await model.citizen_items(ref)
        history = await model.citizen_history(ref)
        await audit.record_read(conn, [ref])
    return {
        "citizen_ref": ref,
        "items": [_public_item(i) for i in await with_titles(ctx.text_keys, items)],
        "timeline": [{**_history_entry(h), "code": h["code"], "category": h["category"]} for h in history],
    }


async def look_up_timeline(ctx: Context, citizen: str) -> dict[str, Any]:
    """A citizen's timeline by citizen reference or NIK (turned into the reference at
    once, never kept); raises domain.NotACitizenReference for anything else."""
    return await timeline(ctx, domain.lookup_ref(citizen, ctx.citizen_ref_key))


async def my_services(
    ctx: Context, contact_ref: str, page: int, page_size: int, code: str | None = None
) -> tuple[list[dict[str, Any]], int]:
    """The items a citizen started with the contact their session proves (only the one
    of `code`, if given), newest first (one page), and how many there are. By the
    contact, never by the citizen reference: a session's NIK is only stated, and stating
    one proves nothing."""
    wanted = None if code is None else domain.lookup_code(code)
    if code is not None and wanted is None:
        return [], 0  # cannot be a code: nobody started it
    async with ctx.pool().acquire() as conn:
        rows, total = await ReadModel(conn).contact_items(contact_ref, page, page_size, wanted)
    return [
        {
            "kind": r["aggregate"],
            "code": r["code"],
            "domain": r["domain"],
            "category": r["category"],
            "status": r["status"],
            "phase": r["phase"],
            "filed_at": r["opened_at"],
            "updated_at": r["last_event_at"],
        }
        for r in rows
    ], total


async def recent_feed(ctx: Context, after: int = 0, limit: int = 30) -> list[dict[str, Any]]:
    async with ctx.pool().acquire() as conn:
        rows = await ReadModel(conn).feed(after=after, limit=limit)
    return [domain.public_feed_entry(r) for r in await with_titles(ctx.text_keys, rows)]


async def gauges(ctx: Context) -> tuple[dict[str, int], datetime | None]:
    async with ctx.pool().acquire() as conn:
        model = ReadModel(conn)
        return await model.open_by_domain(), await model.last_event_at()


# ----- rebuild ----------------------------------------------------------------------------


async def rebuild(
    ctx: Context, *, timeout: float = 600.0, progress: Progress | None = None
) -> dict[str, Any]:
    """Rebuild the read models from the topics: empty them and the consumer's inbox rows
    (one transaction), then re-read every topic from the beginning (rebuild.py). One
    rebuild at a time, in this process and across instances (409 otherwise);
    `progress(applied, total, events_per_s)` is called as batches apply."""
    consumer = ctx.consumer()
    if ctx.rebuild_lock.locked():
        raise Conflict("a rebuild is already running")
    async with ctx.rebuild_lock, repository.rebuild_lock(ctx.pool()) as held:
        if not held:
            raise Conflict("a rebuild is already running (another instance)")
        ctx.rebuilding = True
        started = time.monotonic()
        try:
            await repository.reset(ctx.pool(), consumer.name)
            applied, partitions, complete = await reread(consumer, timeout, progress)
        finally:
            ctx.rebuilding = False
    result = {
        "consumer": consumer.name,
        "topics": consumer.topics,
        "partitions": partitions,
        "records": applied,
        "complete": complete,
        "seconds": round(time.monotonic() - started, 3),
    }
    result["events_per_s"] = round(applied / result["seconds"], 1) if result["seconds"] else None
    log.info("read models rebuilt", extra=result)
    return result
