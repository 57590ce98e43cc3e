"""Izin's rules, pure: the permit application journey's pages in order (they depend on
the permit type the citizen chose, as the permits service's catalogue describes it:
its type-specific fields and its required documents), what each page accepts (as
message keys), the application the answers make, where the service's field messages
belong, and what Lacak may send back of an application waiting for documents.

A permit type is the mapping `GET /permit-types` answers for it: code, name,
applicants, sla_working_days, documents [{code, name, required}], fields [{name, kind,
label, required, choices}], variants.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from services.portal import domain
from services.portal.antrean_rules import RESUBMISSION
from services.portal.domain import Answer, choice, read_contacts, read_digits, read_nik

IZIN = "izin"
# Documents uploaded from Lacak for an application sent back, per tracking code, until
# they are sent.
BERKAS = "berkas"
CHECK = "periksa"
# The pages every application has, in order; the type's fields and documents follow.
FIXED = ("jenis", "syarat", "kecamatan", "desa", "pemohon")
# For a type that both people and businesses may apply for (a PBG, an SLF): a page of its
# own before the applicant's, asking which (one question per page); what the applicant is
# then known by, for each answer.
APPLYING_AS = "sebagai"
APPLICANT_KINDS = {"perorangan": "nik", "badan_usaha": "nib"}
FIELD_PAGE = "rincian-"
DOCUMENT_PAGE = "dokumen-"
# The permits service's limits on the applicant's name, and an NIB's digits.
NAME_LENGTH = (2, 150)
NIB_DIGITS = 13
# The status of an application whose documents are back with the applicant.
DOCUMENTS_INCOMPLETE = "documents_incomplete"
# Where the permits service's field messages (the last part of a 422's `loc`) are asked.
APPLICANT_FIELDS = {"nik": "nik", "nib": "nib", "name": "nama", "phone": "telepon", "email": "email"}


def takes_both(permit_type: Mapping[str, Any] | None) -> bool:
    """Whether people and businesses alike may apply for the type."""
    return {"person", "business"} <= set((permit_type or {}).get("applicants") or ())


def identity(permit_type: Mapping[str, Any] | None, draft: Mapping[str, Any] | None = None) -> str:
    """What the applicant is known by: a business's NIB where the type takes businesses
    only or the citizen said they apply for one, else a person's NIK."""
    kinds = (permit_type or {}).get("applicants") or ["person"]
    if "person" not in kinds:
        return "nib"
    if takes_both(permit_type):
        return APPLICANT_KINDS.get((draft or {}).get(APPLYING_AS, ""), "nik")
    return "nik"


def fixed_steps(permit_type: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The pages before the type's own: with the "applying as" page where it takes both."""
    if not takes_both(permit_type):
        return FIXED
    applicant = FIXED.index("pemohon")
    return (*FIXED[:applicant], APPLYING_AS, *FIXED[applicant:])


def required_documents(permit_type: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [d for d in permit_type.get("documents", []) if d.get("required", True)]


def steps_for(permit_type: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The pages of an application for `permit_type` (the fixed ones while none is chosen)."""
    if permit_type is None:
        return FIXED
    fields = tuple(FIELD_PAGE + f["name"] for f in permit_type.get("fields", []))
    documents = tuple(DOCUMENT_PAGE + d["code"] for d in required_documents(permit_type))
    return fixed_steps(permit_type) + fields + documents


def field_of(permit_type: Mapping[str, Any] | None, step: str) -> Mapping[str, Any] | None:
    if permit_type is None or not step.startswith(FIELD_PAGE):
        return None
    name = step.removeprefix(FIELD_PAGE)
    return next((f for f in permit_type.get("fields", []) if f["name"] == name), None)


def document_of(permit_type: Mapping[str, Any] | None, step: str) -> Mapping[str, Any] | None:
    if permit_type is None or not step.startswith(DOCUMENT_PAGE):
        return None
    code = step.removeprefix(DOCUMENT_PAGE)
    return next((d for d in required_documents(permit_type) if d["code"] == code), None)


def answered(draft: Mapping[str, Any], step: str, permit_type: Mapping[str, Any] | None) -> bool:
    if step.startswith(FIELD_PAGE):
        return step.removeprefix(FIELD_PAGE) in (draft.get("rincian") or {})
    if step.startswith(DOCUMENT_PAGE):
        return bool((draft.get("dokumen") or {}).get(step.removeprefix(DOCUMENT_PAGE)))
    needs = {
        "jenis": ("jenis",),
        "syarat": ("syarat",),
        "kecamatan": ("kecamatan",),
        "desa": ("desa",),
        APPLYING_AS: (APPLYING_AS,),
        "pemohon": (identity(permit_type, draft), "nama"),
    }[step]
    return all(draft.get(name) not in (None, "") for name in needs)


def first_unanswered(draft: Mapping[str, Any], permit_type: Mapping[str, Any] | None) -> str | None:
    return next((s for s in steps_for(permit_type) if not answered(draft, s, permit_type)), None)


def next_page(
    draft: Mapping[str, Any], permit_type: Mapping[str, Any] | None, step: str, *, checking: bool
) -> str:
    """Where a page leads once answered: on, or back to the check page when the citizen
    came to change one answer (unless that change opened questions: a new type's fields)."""
    missing = first_unanswered(draft, permit_type)
    if checking:
        return missing or CHECK
    order = steps_for(permit_type)
    later = order[order.index(step) + 1 :] if step in order else ()
    return later[0] if later else (missing or CHECK)


def previous_page(permit_type: Mapping[str, Any] | None, step: str) -> str | None:
    order = (*steps_for(permit_type), CHECK)
    index = order.index(step) if step in order else 0
    return order[index - 1] if index > 0 else None


# ----- each page's answers ----------------------------------------------------------------


def read_page(
    step: str,
    form: Mapping[str, str],
    draft: Mapping[str, Any],
    permit_type: Mapping[str, Any] | None,
    offered: set[str],
) -> Answer:
    """A page's submitted form as answers or errors; `offered` are the permit types'
    codes the permits service has now. Documents are not read here: they are uploads."""
    answer = Answer()
    if step == "jenis":
        choice(answer, form, "jenis", offered)
        if answer.values and draft.get("jenis") != answer.values["jenis"]:
            answer.values.update(rincian={}, dokumen={}, syarat="")
    elif step == "syarat":
        answer.values["syarat"] = "ya"
    elif step in ("kecamatan", "desa"):
        found = domain.read_page(step, form, draft, set())
        answer.errors.update(found.errors)
        answer.values.update({k: v for k, v in found.values.items() if k in ("kecamatan", "desa")})
    elif step == APPLYING_AS:
        choice(answer, form, APPLYING_AS, set(APPLICANT_KINDS))
    elif step == "pemohon":
        _read_applicant(answer, form, identity(permit_type, draft))
    elif (spec := field_of(permit_type, step)) is not None:
        read_field(answer, form, spec)
        if not answer.errors:
            answer.values = {"rincian": {**(draft.get("rincian") or {}), **answer.values}}
    return answer


def _read_applicant(answer: Answer, form: Mapping[str, str], known_by: str) -> None:
    if known_by == "nik":
        read_nik(answer, form)
    else:
        read_digits(answer, form, "nib", NIB_DIGITS, r"[\s.-]")
    name = " ".join((form.get("nama") or "").split())
    if not name:
        answer.refuse("nama", "error.nama.empty")
    elif len(name) < NAME_LENGTH[0]:
        answer.refuse("nama", "error.nama.short")
    elif len(name) > NAME_LENGTH[1]:
        answer.refuse("nama", "error.nama.pemohon_long")
    else:
        answer.values["nama"] = name
    read_contacts(answer, form, required=True)


_NUMBER = re.compile(r"^-?\d+([.,]\d+)?$")


def _written(number: float) -> str:
    """A bound as Indonesians write it: 1.000.000 (a thousands point), 2,5 (a decimal comma)."""
    if float(number).is_integer():
        return f"{int(number):,}".replace(",", ".")
    return f"{number:g}".replace(".", ",")


def _within(answer: Answer, name: str, value: float, spec: Mapping[str, Any]) -> None:
    """A number inside the least and most the catalogue publishes, said in plain words."""
    least, most = spec.get("minimum"), spec.get("maximum")
    if least is not None and value < least:
        answer.refuse(name, "error.izin.minimum", least=_written(least))
    elif most is not None and value > most:
        answer.refuse(name, "error.izin.maximum", most=_written(most))
    else:
        answer.values[name] = value


def read_field(answer: Answer, form: Mapping[str, str], spec: Mapping[str, Any]) -> None:
    """One type-specific field as the catalogue describes it (kind, required, choices,
    a number's least and most, a text's length). Rules the catalogue does not publish
    the service checks at submission; its message then comes back to this field's page."""
    name, kind = spec["name"], spec["kind"]
    raw = " ".join((form.get(name) or "").split())
    if not raw:
        if spec.get("required", True):
            answer.refuse(name, f"error.izin.{'choose' if kind == 'choice' else 'empty'}")
        else:
            answer.values[name] = None
        return
    if kind in ("integer", "number"):
        # Written as Indonesians do: 1.250 is a thousand two hundred and fifty, 12,5 a half.
        text = raw.replace(" ", "")
        text = text.replace(".", "") if kind == "integer" or re.search(r"\.\d{3}(?!\d)", text) else text
        text = text.replace(",", ".")
        if not _NUMBER.match(text):
            answer.refuse(name, "error.izin.number")
        elif kind == "integer" and "." in text:
            answer.refuse(name, "error.izin.whole")
        else:
            _within(answer, name, int(text) if kind == "integer" else float(text), spec)
    elif kind == "choice":
        choice(answer, {name: raw}, name, tuple(spec.get("choices") or ()))
        if name in answer.errors:
            answer.errors[name] = "error.izin.choose"
    elif kind == "kbli":
        if not re.fullmatch(r"\d{5}", raw):
            answer.refuse(name, "error.izin.kbli")
        else:
            answer.values[name] = raw
    elif len(raw) > spec.get("max_length", len(raw)):
        answer.refuse(name, "error.izin.too_long", most=spec["max_length"])
    else:
        answer.values[name] = raw


def application_body(draft: Mapping[str, Any], permit_type: Mapping[str, Any], locale: str) -> dict[str, Any]:
    """What the permits service's POST /applications takes, from a finished draft."""
    known_by = identity(permit_type, draft)
    applicant = {known_by: draft[known_by], "name": draft["nama"]}
    applicant.update({k: v for k, v in (("phone", draft.get("telepon")), ("email", draft.get("email"))) if v})
    details = {k: v for k, v in (draft.get("rincian") or {}).items() if v is not None}
    documents = [{"code": c, "upload": u} for c, u in (draft.get("dokumen") or {}).items()]
    return {
        "permit_type": permit_type["code"],
        "applicant": applicant,
        "desa_code": draft["desa"],
        "details": details,
        "documents": documents,
        "locale": locale,
    }


def refused_on(permit_type: Mapping[str, Any], messages: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The permits service's field messages of a refused application, by the page that
    asks each field and that page's field; a message no page asks stays under ''
    (shown on the check page)."""
    fields = {f["name"] for f in permit_type.get("fields", [])}
    documents = {d["code"] for d in required_documents(permit_type)}
    found: dict[str, dict[str, str]] = {}
    for name, message in messages.items():
        if name in fields:
            page, field = FIELD_PAGE + name, name
        elif name in APPLICANT_FIELDS:
            page, field = "pemohon", APPLICANT_FIELDS[name]
        elif name == "desa_code":
            page, field = "desa", "desa"
        elif name in documents:
            page, field = DOCUMENT_PAGE + name, "berkas"
        else:
            page, field = CHECK, ""
        found.setdefault(page, {}).setdefault(field, message)
    return found


def application_facts(case: Mapping[str, Any]) -> dict[str, Any]:
    """What Lacak shows of an application besides its history: its clock's state
    (running, paused, stopped), the working days left and, while it runs, when it is
    due; and the documents an officer asked for again."""
    sla = case.get("sla") or {}
    return {
        "permit_type": case.get("permit_type"),
        "sla_state": sla.get("state"),
        "sla_remaining": sla.get("remaining_working_days"),
        "sla_due": sla.get("due_at"),
        "missing": list(case.get("missing_documents") or [])
        if case.get("status") == DOCUMENTS_INCOMPLETE
        else [],
    }


def missing_documents(
    case: Mapping[str, Any], permit_type: Mapping[str, Any] | None
) -> list[tuple[str, str]]:
    """The documents an officer asked for again, (code, name), while the application is
    back with the applicant; none otherwise."""
    if case.get("status") != DOCUMENTS_INCOMPLETE:
        return []
    names = {d["code"]: d["name"] for d in (permit_type or {}).get("documents", [])}
    return [(code, names.get(code, code)) for code in case.get("missing_documents", [])]


def still_missing(missing: Sequence[str], uploaded: Mapping[str, str]) -> list[str]:
    """The asked-for documents not uploaded yet (the service takes them all at once)."""
    return [code for code in missing if not uploaded.get(code)]


def applicant_sign_in(code: str) -> str:
    """The sign-in before sending documents again (with the phone or email the applicant
    gave), coming back to the application's documents on Lacak."""
    back = "/lacak?" + urlencode({"kode": code}) + "#berkas"
    return "/masuk?" + urlencode({"untuk": RESUBMISSION, "lanjut": back})
