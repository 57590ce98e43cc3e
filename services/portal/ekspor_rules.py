"""A citizen's data export (UU PDP 27/2022, the right of access), pure: which services
hold a part, what the data protection officer's form accepts, and the one document the
parts make.

The document is machine-readable JSON: the export's id (the audit rows of every service
that answered and of the portal carry it), when it was made, the services that answered
(every one, or there is no document: a part missing would pass for "holds nothing"), and
per service its kinds of records.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.portal.domain import Answer, read_contacts, read_nik
from services.portal.operasi_rules import AUDITED

DOWNLOAD = "/layanan/unduh"
# Every service that holds something about a citizen is asked: the same ones whose audit
# trails the operations pages read.
SERVICES = AUDITED
# The officer's form, in page order (the error summary's order).
FIELDS = ("nik", "telepon", "email")
MEDIA_TYPE = "application/json"
# The audit trail's words for the two steps the portal records.
REQUESTED = "citizen.export.requested"
DELIVERED = "citizen.export.delivered"
EXPORT_RECORD = "export:"
# What a download is named for: the citizen's own data (Layanan saya), or a citizen's data
# the data protection officer exported.
OWN_FILE, OFFICER_FILE = "data-saya", "data-warga"


def read_request(form: Mapping[str, str]) -> Answer:
    """The officer's form: a NIK (required), and the phone number and email address the
    citizen gave, if any (their records found by those too). The answers' names are the
    services' (`nik`, `phone`, `email`)."""
    answer = Answer()
    read_nik(answer, form)
    read_contacts(answer, form, required=False)
    phone, email = answer.values.pop("telepon", ""), answer.values.pop("email", "")
    answer.values.update({"phone": phone} if phone else {})
    answer.values.update({"email": email.lower()} if email else {})
    return answer


def document(
    export_id: str, generated_at: datetime, parts: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """The one document of an export: every service's kinds of records, by service."""
    return {
        "export_id": export_id,
        "generated_at": generated_at.isoformat(),
        "services_answered": [name for name in SERVICES if name in parts],
        "services": {name: dict(parts[name].get("data") or {}) for name in SERVICES if name in parts},
    }


def filename(kind: str, export_id: str, generated_at: datetime) -> str:
    """The download's name: whose download it is (`kind`: OWN_FILE or OFFICER_FILE), the
    day and the export's id, nothing about the citizen."""
    return f"{kind}-{generated_at:%Y%m%d}-{export_id[:8]}.json"


def records(refs: list[str], export_id: str) -> list[str]:
    """What the audit rows name: the citizen's references and the export."""
    return [*refs, f"{EXPORT_RECORD}{export_id}"]
