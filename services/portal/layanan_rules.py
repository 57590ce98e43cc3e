"""Layanan saya's rules, pure: the notification preferences form as the notification
service's body, and back; the answers a citizen gives about a resolved complaint (fixed
and rated, or not fixed and reopened) as the complaints service's bodies.

A citizen chooses one channel to be reached on first (or leaves the service's order),
a language, and optionally quiet hours (whole hours, WIB) during which non-urgent
messages wait.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.portal.domain import NO, YES, Answer, choice, read_text

# The notification service's channels (services/notifications/api.py's ChannelName);
# "" keeps the service's own order.
CHANNELS = ("", "whatsapp", "sms", "email")
LOCALES = ("id", "en")
HOURS = tuple(f"{h:02d}:00" for h in range(24))
# How many services a page of the list shows (the integration view's default).
PAGE_SIZE = 20


def read_preferences(form: Mapping[str, str]) -> Answer:
    """The form as PUT /preferences's body under "body", or errors by field."""
    answer = Answer()
    choice(answer, form, "kanal", CHANNELS)
    choice(answer, form, "bahasa", LOCALES)
    start, end = (form.get("mulai") or "").strip(), (form.get("selesai") or "").strip()
    quiet: dict[str, str] | None = None
    if start or end:
        if start not in HOURS:
            answer.refuse("mulai", "error.mulai.choose")
        if end not in HOURS:
            answer.refuse("selesai", "error.selesai.choose")
        elif start == end:
            answer.refuse("selesai", "error.selesai.same")
        quiet = {"start": start, "end": end}
    if not answer.errors:
        channel = answer.values["kanal"]
        answer.values = {
            "body": {
                "channels": [channel] if channel else [],
                "locale": answer.values["bahasa"],
                "quiet_hours": quiet,
                "opted_out": False,
            }
        }
    return answer


def form_of(preferences: Mapping[str, Any]) -> dict[str, str]:
    """The notification service's preferences as the form shows them."""
    quiet = preferences.get("quiet_hours") or {}
    channels = preferences.get("channels") or []
    return {
        "kanal": channels[0] if channels else "",
        "bahasa": preferences.get("locale") or "id",
        "mulai": quiet.get("start", ""),
        "selesai": quiet.get("end", ""),
    }


# ----- a resolved complaint: fixed (rated) or not (reopened) -------------------------------

# The complaint the citizen may answer about: resolved by the OPD, waiting for them.
RESOLVED = "resolved"
RATINGS = ("5", "4", "3", "2", "1")
# The complaints service's bounds (RatingIn.comment, ReopenIn.reason); what is not fixed
# needs a few words for the OPD to act on.
COMMENT_MAX = 1000
REASON_LENGTH = (10, 2000)


def read_fixed(form: Mapping[str, str]) -> Answer:
    """Is the problem fixed? "ya" leads to the rating, "tidak" to reopening."""
    answer = Answer()
    choice(answer, form, "tuntas", (YES, NO))
    return answer


def read_rating(form: Mapping[str, str]) -> Answer:
    """The rating form as POST /complaints/{code}/rating's body under "body"."""
    answer = Answer()
    choice(answer, form, "nilai", RATINGS)
    comment = (form.get("komentar") or "").strip()
    if len(comment) > COMMENT_MAX:
        answer.refuse("komentar", "error.komentar.long")
    if not answer.errors:
        answer.values = {"body": {"rating": int(answer.values["nilai"]), "comment": comment or None}}
    return answer


def read_reopen(form: Mapping[str, str]) -> Answer:
    """What is not fixed, as POST /complaints/{code}/reopen's body under "body"."""
    answer = Answer()
    read_text(answer, form, "alasan", REASON_LENGTH)
    if not answer.errors:
        answer.values = {"body": {"reason": answer.values["alasan"]}}
    return answer
