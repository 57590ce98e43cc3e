"""Message templates: Jinja2 in a sandbox, files an operator edits, reloaded on change.

Layout (under ``templates/``): ``<locale>/<template>.<channel>.j2`` with the template
name from the rule (``complaints/filed``) and the channel ``email``, ``sms`` or
``whatsapp``; ``<template>.text.j2`` serves both SMS and WhatsApp. An email template
starts with a ``Subject: …`` line. When a template is missing the generic one of the
locale is used (``<locale>/generic.email.j2`` / ``generic.text.j2``) and counted.

The sandbox keeps an edited template from reaching into Python; `StrictUndefined`
turns a misspelt field into an error (the notification becomes technical-failure with
the error recorded) instead of an empty blank in a message to a citizen.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import FileSystemLoader, StrictUndefined, Template, TemplateError, TemplateNotFound, pass_context
from jinja2.loaders import split_template_path
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from services.notifications.domain import WIB, choose_template, template_candidates

MONTHS = {
    "id": [
        "Januari",
        "Februari",
        "Maret",
        "April",
        "Mei",
        "Juni",
        "Juli",
        "Agustus",
        "September",
        "Oktober",
        "November",
        "Desember",
    ],
    "en": [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
}
DAYS = {
    "id": ["Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu"],
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
}
TZ_LABEL = {"Asia/Jakarta": "WIB", "Asia/Makassar": "WITA", "Asia/Jayapura": "WIT"}


class RenderError(Exception):
    def __init__(self, template: str, message: str) -> None:
        super().__init__(f"{template}: {message}")
        self.template = template
        self.message = message


@dataclass(frozen=True)
class Rendered:
    template: str
    fallback: bool
    subject: str | None
    body: str


def _as_datetime(value: Any) -> datetime | date:
    if isinstance(value, datetime | date):
        return value
    text = str(value)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return date.fromisoformat(text)


class TemplateStore:
    def __init__(self, folder: Path, *, default_locale: str = "id", tz: ZoneInfo = WIB) -> None:
        self.folder = Path(folder)
        self.default_locale = default_locale
        self.tz = tz
        self.loader = FileSystemLoader(self.folder)
        self.env = SandboxedEnvironment(
            loader=self.loader,
            undefined=StrictUndefined,
            auto_reload=True,  # checks each file's mtime on use
            autoescape=False,  # plain text messages
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["datetime"] = self._datetime
        self.env.filters["date"] = self._date
        # While held: which files exist and the templates loaded, by name.
        self._found: dict[str, bool] | None = None
        self._loaded: dict[str, Template] = {}

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Look each file up once while held: a consumer's batch renders hundreds of
        messages from a few templates, and asked the disk twice for each. Hold it only
        around work that does not await, so a template edited on disk is what the next
        batch (or a resend) sees."""
        self._found, self._loaded = {}, {}
        try:
            yield
        finally:
            self._found, self._loaded = None, {}

    def _exists(self, name: str) -> bool:
        if self._found is None:
            return self.exists(name)
        if name not in self._found:
            self._found[name] = self.exists(name)
        return self._found[name]

    def _template(self, name: str) -> Template:
        if self._found is None:
            return self.env.get_template(name)
        if name not in self._loaded:
            self._loaded[name] = self.env.get_template(name)
        return self._loaded[name]

    def exists(self, name: str) -> bool:
        # As the loader looks (it would also read the file): asked for every message.
        try:
            pieces = split_template_path(name)
        except TemplateNotFound:
            return False
        return any(os.path.isfile(posixpath.join(path, *pieces)) for path in self.loader.searchpath)

    def render(self, template: str, channel: str, locale: str, context: dict[str, Any]) -> Rendered:
        candidates = template_candidates(template, channel, locale, self.default_locale)
        chosen = choose_template(candidates, self._exists)
        if chosen is None:
            raise RenderError(candidates[0][0], "template missing and no generic fallback template")
        name, fallback = chosen
        try:
            text = self._template(name).render(
                **context, locale=locale, channel=channel, template_name=template
            )
        except TemplateError as exc:
            raise RenderError(name, f"{type(exc).__name__}: {exc}") from exc
        except Exception as exc:  # a filter given a wrong value, etc.
            raise RenderError(name, f"{type(exc).__name__}: {exc}") from exc
        subject, body = _split_subject(text) if channel == "email" else (None, text.strip())
        if not body:
            raise RenderError(name, "template rendered an empty message")
        return Rendered(name, fallback, subject, body)

    # ----- filters --------------------------------------------------------------------------

    def _label(self) -> str:
        return TZ_LABEL.get(str(self.tz), str(self.tz))

    @pass_context
    def _datetime(self, ctx: Context, value: Any) -> str:
        """`{{ data.verify_due | datetime }}` -> ``5 November 2026, 10.00 WIB``."""
        if value is None:
            return "-"
        moment = _as_datetime(value)
        if not isinstance(moment, datetime):
            return self._date(ctx, moment)
        local = moment.astimezone(self.tz)
        locale = ctx.get("locale", self.default_locale)
        month = MONTHS.get(locale, MONTHS["id"])[local.month - 1]
        sep = "." if locale == "id" else ":"
        return f"{local.day} {month} {local.year}, {local.hour:02d}{sep}{local.minute:02d} {self._label()}"

    @pass_context
    def _date(self, ctx: Context, value: Any) -> str:
        """`{{ data.date | date }}` -> ``Senin, 2 November 2026``."""
        if value is None:
            return "-"
        moment = _as_datetime(value)
        if isinstance(moment, datetime):
            moment = moment.astimezone(self.tz).date()
        locale = ctx.get("locale", self.default_locale)
        day = DAYS.get(locale, DAYS["id"])[moment.weekday()]
        month = MONTHS.get(locale, MONTHS["id"])[moment.month - 1]
        return f"{day}, {moment.day} {month} {moment.year}"


def _split_subject(text: str) -> tuple[str, str]:
    lines = text.strip().splitlines()
    if lines and lines[0].lower().startswith("subject:"):
        subject = lines[0].split(":", 1)[1].strip()
        return subject, "\n".join(lines[1:]).strip() + "\n"
    return "Sinergi", text.strip() + "\n"
