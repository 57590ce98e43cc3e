"""What "in clear" means for one citizen's personal data (UU PDP 27/2022), defined once for
every forensic test: the values a citizen gave (NIK, phone in each form the services write
it, email in any case, name, what they wrote) looked for in the places the platform keeps
things — every table of a database, every record of every topic (values, keys, headers),
every log record, every file of an attachment store — and, given the keys that remain
after an erasure, also inside what those keys still open (a sealed value a remaining key
opens is not erased).

Each finding says where (table and column, topic/partition/offset, log record, file) and
shows the text around the value, so a failing check tells what to fix without a debugger.
The scans are plain functions over what a test hands them; a test proves each one finds
the values before an erasure (its positive control) before it trusts it to find none after.
"""

from __future__ import annotations

import json
import logging
import random
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord
from cryptography.fernet import Fernet, InvalidToken
from pydantic import BaseModel, SecretStr

from shared.kit import privacy
from shared.reference import normalize_mobile, parse_nik
from tests.attachment_support import stored_files

# A Fernet token (version byte 0x80, base64url): sealed contacts, sealed texts, wrapped keys.
FERNET_TOKEN = re.compile(r"gAAAAA[A-Za-z0-9_\-]{40,}={0,2}")
EXCERPT = 60  # characters shown on each side of a value found


# ----- the citizen and their values ------------------------------------------------------------


def _letters(n: int) -> str:
    return "".join(random.choice("bcdfghjklmnpqrstvwxz") for _ in range(n))


def unique_nik() -> str:
    """A valid Purworejo NIK no other test uses: random birth date and serial."""
    day, month, year = random.randint(1, 28), random.randint(1, 12), random.randint(60, 99)
    nik = f"3306{random.randint(1, 16):02d}{day:02d}{month:02d}{year:02d}{random.randint(1, 9999):04d}"
    return parse_nik(nik).value


@dataclass(frozen=True)
class Person:
    """A citizen whose every value is unique to one test, so a value found anywhere is
    theirs. `texts`: what they wrote, by what it is (a complaint's title, ...)."""

    nik: str
    phone: str  # +628…
    email: str
    name: str
    texts: Mapping[str, str]

    @classmethod
    def unique(cls, *texts: str) -> Person:
        """A new person; `texts` name the things they write (each gets a unique text)."""
        tag = _letters(8)
        phone = "+62812" + "".join(random.choice("0123456789") for _ in range(8))
        return cls(
            nik=unique_nik(),
            phone=normalize_mobile(phone),
            email=f"Warga.{tag}@Example.COM",
            name=f"Sri Rahayu {tag.capitalize()}",
            texts={
                what: f"{what} {_letters(6)}: jalan di depan rumah {tag} rusak parah sejak bulan lalu"
                for what in texts
            },
        )

    @property
    def national(self) -> str:
        """The number without the country code: 812…"""
        return self.phone.removeprefix("+62")

    @cached_property
    def needles(self) -> dict[str, re.Pattern[str]]:
        """Each value (by what it is) as a pattern over lower-cased text. The 628… form is
        not counted inside a +628… (that is found as itself)."""
        values = {
            "NIK": re.escape(self.nik),
            "phone 08…": re.escape("0" + self.national),
            "phone +628…": re.escape(self.phone),
            "phone 628…": r"(?<!\+)" + re.escape("62" + self.national),
            "email": re.escape(self.email.lower()),
            "name": re.escape(self.name.lower()),
            **{f"text: {what}": re.escape(text.lower()) for what, text in self.texts.items()},
        }
        return {label: re.compile(pattern) for label, pattern in values.items()}

    @cached_property
    def any_value(self) -> re.Pattern[str]:
        """Any of the values: most text holds none, and is passed over with one search."""
        return re.compile("|".join(f"(?:{p.pattern})" for p in self.needles.values()))


@dataclass(frozen=True)
class Finding:
    """A value of the person found somewhere: where, which value, the text around it."""

    place: str
    value: str
    excerpt: str
    record: str = ""  # the row of a table it is in (a database's findings)

    def __str__(self) -> str:
        return f"{self.place}: {self.value} in …{self.excerpt}…"


def report(findings: Iterable[Finding], limit: int = 60) -> str:
    """Findings one per line (the first `limit`), for an assertion's message."""
    listed = [str(f) for f in findings]
    more = f"\n… and {len(listed) - limit} more" if len(listed) > limit else ""
    return "\n".join(listed[:limit]) + more


def values_in(findings: Iterable[Finding]) -> set[str]:
    return {f.value for f in findings}


# ----- keys and sealed values ------------------------------------------------------------------


def usable_keys(candidates: Iterable[str]) -> list[str]:
    """The candidates that are Fernet keys (others, like HMAC secrets, open nothing)."""
    found: list[str] = []
    for key in candidates:
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            continue
        if key not in found:
            found.append(key)
    return found


def secrets_of(settings: BaseModel) -> list[str]:
    """Every secret a service's settings hold (its platform's included)."""
    found: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            found += secrets_of(value)
    return found


def opened(token: str, keys: Sequence[str]) -> str | None:
    """What a Fernet token holds, if one of `keys` opens it."""
    for key in keys:
        try:
            return Fernet(key.encode()).decrypt(token.encode()).decode(errors="replace")
        except (InvalidToken, ValueError, TypeError):
            continue
    return None


def derived_keys(data_keys: Iterable[str]) -> list[str]:
    """The keys a data key gives besides itself: the text key of sealed free text, where
    the kit derives one (`privacy.text_key`)."""
    derive = getattr(privacy, "text_key", None)
    return [derive(key) for key in data_keys] if derive is not None else []


async def keys_left(database_urls: Iterable[str], settings: Iterable[BaseModel]) -> list[str]:
    """Every key that could open a sealed value: the secrets of the services' settings,
    each data key any database keeps (`citizen_keys`, unwrapped with those secrets) and
    the keys derived from them."""
    configured = usable_keys(secret for s in settings for secret in secrets_of(s))
    data: list[str] = []
    for url in database_urls:
        conn = await asyncpg.connect(url)
        try:
            if await conn.fetchval("SELECT to_regclass('citizen_keys') IS NOT NULL"):
                for row in await conn.fetch("SELECT wrapped_key FROM citizen_keys"):
                    key = opened(bytes(row["wrapped_key"]).decode(), configured)
                    if key is not None:
                        data.append(key)
        finally:
            await conn.close()
    return usable_keys([*configured, *data, *derived_keys(data)])


@dataclass(frozen=True)
class SealedCopy:
    """A sealed value on the log: where, the data key it names, the token."""

    place: str
    key_id: str | None
    token: str


def sealed_in(value: Any, place: str) -> Iterator[SealedCopy]:
    """Every sealed value (an object with a `sealed` token) inside a JSON value."""
    if isinstance(value, dict):
        token = value.get("sealed")
        if isinstance(token, str) and token:
            yield SealedCopy(place, value.get("key_id"), token)
        for name, inner in value.items():
            yield from sealed_in(inner, f"{place}.{name}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from sealed_in(inner, f"{place}[{i}]")


# ----- finding values in text ------------------------------------------------------------------


def find(person: Person, place: str, text: str, keys: Sequence[str] = ()) -> list[Finding]:
    """The person's values in `text`; with `keys`, also in what they open of the sealed
    values in it (reported as such)."""
    found = _found(person, place, text)
    if keys:
        seen = values_in(found)
        for match in FERNET_TOKEN.finditer(text):
            inside = opened(match.group(0), keys)
            if inside is None:
                continue
            where = f"{place} (sealed, opened with a key left)"
            found += [f for f in _found(person, where, inside) if f.value not in seen]
    return found


def _found(person: Person, place: str, text: str) -> list[Finding]:
    lowered = text.lower()
    if person.any_value.search(lowered) is None:
        return []
    findings = []
    for label, pattern in person.needles.items():
        match = pattern.search(lowered)
        if match is not None:
            start, end = max(0, match.start() - EXCERPT), match.end() + EXCERPT
            findings.append(Finding(place, label, text[start:end].replace("\n", " ")))
    return findings


def _as_text(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)


# ----- databases -------------------------------------------------------------------------------


@dataclass
class DatabaseScan:
    """What scanning one database found, and every table it looked in."""

    tables: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


async def scan_database(url: str, name: str, person: Person, keys: Sequence[str] = ()) -> DatabaseScan:
    """Every row of every table (`SELECT t::text FROM t`, the outbox's and inbox's too),
    each column also read as its own type (a bytea column's bytes as text: the outbox
    keeps events as bytes), for the person's values."""
    scan = DatabaseScan()
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')"
            " ORDER BY table_schema, table_name"
        )
        for table in tables:
            qualified = f'"{table["table_schema"]}"."{table["table_name"]}"'
            scan.tables.append(f"{table['table_schema']}.{table['table_name']}")
            try:
                rows = await conn.fetch(f"SELECT t::text AS forensic_row_text, t.* FROM {qualified} t")
            except asyncpg.PostgresError:  # a column type without a codec: the row's text only
                rows = await conn.fetch(f"SELECT t::text AS forensic_row_text FROM {qualified} t")
            for i, row in enumerate(rows):
                where = f"database {name} table {scan.tables[-1]}"
                which = f"row {i}" + (f", {_identity(row)}" if len(row) > 1 else "")
                found: list[Finding] = []
                for column, value in row.items():
                    if column != "forensic_row_text" and value is not None:
                        found += find(person, f"{where} column {column} ({which})", _as_text(value), keys)
                whole = find(person, f"{where} ({which}, as text)", row["forensic_row_text"], keys)
                found += [f for f in whole if f.value not in values_in(found)]
                scan.findings += [replace(f, record=f"{where} row {i}") for f in found]
    finally:
        await conn.close()
    return scan


def _identity(row: asyncpg.Record) -> str:
    """The row's first column (its key, in every table here) and what it is about, when
    it says: enough to find the row again."""
    names = [n for n in row.keys() if n != "forensic_row_text"]  # noqa: SIM118 (a Record)
    shown = [names[0], *(n for n in ("rule", "template", "event_type", "status") if n in names)]
    return ", ".join(f"{n}={str(row[n])[:40]}" for n in dict.fromkeys(shown))


# ----- topics ----------------------------------------------------------------------------------


def scan_records(
    person: Person, topics: Iterable[tuple[str, list[ConsumerRecord]]], keys: Sequence[str] = ()
) -> list[Finding]:
    """The person's values in every record's value, key and headers."""
    findings: list[Finding] = []
    for topic, records in topics:
        for r in records:
            where = f"topic {topic} partition {r.partition} offset {r.offset}"
            findings += find(person, f"{where} value", _as_text(r.value or b""), keys)
            findings += find(person, f"{where} key", _as_text(r.key or b""), keys)
            for header, value in r.headers or ():
                findings += find(person, f"{where} header {header}", f"{header}={_as_text(value)}", keys)
    return findings


def sealed_copies(topics: Iterable[tuple[str, list[ConsumerRecord]]]) -> list[SealedCopy]:
    """Every sealed value in the events on these topics."""
    copies: list[SealedCopy] = []
    for topic, records in topics:
        for r in records:
            try:
                event = json.loads(r.value or b"")
            except ValueError:
                continue
            copies += sealed_in(event, f"topic {topic} partition {r.partition} offset {r.offset} $")
    return copies


# ----- logs ------------------------------------------------------------------------------------

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


@dataclass(frozen=True)
class LoggedRecord:
    """A log record as it was emitted, before any handler's filter changed it."""

    logger: str
    level: str
    message: str
    fields: dict[str, str] = field(default_factory=dict)  # extras, traceback, stack

    @classmethod
    def of(cls, record: logging.LogRecord) -> LoggedRecord:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit the message
            message = f"{record.msg!r} % {record.args!r}"
        fields = {k: _as_text(v) for k, v in record.__dict__.items() if k not in _STANDARD and v is not None}
        if record.exc_info:
            fields["traceback"] = logging.Formatter().formatException(record.exc_info)
        for name in ("exc_text", "stack_info"):
            if getattr(record, name, None):
                fields[name] = str(getattr(record, name))
        return cls(record.name, record.levelname, message, fields)


class LogCapture(logging.Handler):
    """Every record of every logger while it is installed, at DEBUG: first among the root
    logger's handlers (so it sees records before the services' redaction filter masks
    them); `everything_at_debug` after the services configured their logging."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[LoggedRecord] = []
        self._levels: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(LoggedRecord.of(record))

    def everything_at_debug(self) -> None:
        loggers = [logging.getLogger(), *map(logging.getLogger, list(logging.Logger.manager.loggerDict))]
        for logger in loggers:
            self._levels.setdefault(logger.name, logger.level)
            logger.setLevel(logging.DEBUG)

    def __enter__(self) -> LogCapture:
        logging.getLogger().handlers.insert(0, self)
        self.everything_at_debug()
        return self

    def __exit__(self, *_: object) -> None:
        logging.getLogger().removeHandler(self)
        for name, level in self._levels.items():
            logging.getLogger(name if name != "root" else None).setLevel(level)


def scan_logs(person: Person, records: Iterable[LoggedRecord]) -> list[Finding]:
    """The person's values in each record's message and every other field."""
    findings: list[Finding] = []
    for i, record in enumerate(records):
        where = f"log record {i} ({record.logger}, {record.level})"
        findings += find(person, f"{where} message", record.message)
        for name, value in record.fields.items():
            findings += find(person, f"{where} field {name}", value)
    return findings


# ----- attachment stores -----------------------------------------------------------------------


def scan_files(person: Person, root: Path) -> list[Finding]:
    """The person's values in the bytes of every file under `root` (an attachment store)."""
    findings: list[Finding] = []
    for path in stored_files(root):
        findings += find(person, f"file {path.relative_to(root)}", path.read_bytes().decode("latin-1"))
    return findings


def files_of(root: Path, service: str, ids: Iterable[str]) -> list[Path]:
    """Which of the attachments `ids` a service's store (`root`/service, as
    `attachments.FileStore` names them) still has."""
    paths = [root / service / uuid.UUID(i).hex[:2] / uuid.UUID(i).hex for i in ids]
    return [p for p in paths if p.exists()]
