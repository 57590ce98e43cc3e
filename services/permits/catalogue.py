"""Reference data of the permits service: permit types and KBLI codes (permit_types.yaml)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from services.permits.domain import DocumentSpec, FieldSpec, PermitType, Retained, Terms

DEFAULT_PATH = Path(__file__).with_name("permit_types.yaml")
FIELD_KINDS = {"text", "integer", "number", "choice", "kbli"}
APPLICANT_KINDS = {"person", "business"}
TERM_KEYS = {"sla_days", "inspection_required", "deemed_approval", "validity_years", "reminder_days"}


@dataclass(frozen=True)
class Catalogue:
    permit_types: dict[str, PermitType]
    kbli: dict[str, str]

    @property
    def retention(self) -> dict[str, dict[str, list[str]]]:
        """Per type, what a decided permit keeps after its holder's erasure (as JSON for
        the erasure's statement)."""
        return {
            code: {"fields": sorted(t.retained.fields), "documents": sorted(t.retained.documents)}
            for code, t in self.permit_types.items()
        }

    def permit_type(self, code: str, *, number_code: str, opd: str, dimension: str) -> PermitType:
        """The type, or a stand-in for one since removed from the file (old rows keep
        their own terms, so the stand-in only needs names)."""
        found = self.permit_types.get(code)
        if found is not None:
            return found
        return PermitType(
            code=code,
            name=code,
            number_code=number_code,
            opd=opd,
            dimension=dimension,
            applicant_kinds=frozenset(APPLICANT_KINDS),
            documents=(),
            fields=(),
            terms=Terms(1, False, False, None, 0),
        )


def _field(raw: dict[str, Any], where: str) -> FieldSpec:
    kind = raw["kind"]
    if kind not in FIELD_KINDS:
        raise ValueError(f"{where}: unknown field kind {kind!r}")
    if kind == "choice" and not raw.get("choices"):
        raise ValueError(f"{where}: a choice field needs choices")
    return FieldSpec(
        name=raw["name"],
        kind=kind,
        label=raw.get("label", raw["name"]),
        required=bool(raw.get("required", True)),
        choices=tuple(raw.get("choices") or ()),
        minimum=raw.get("min"),
        maximum=raw.get("max"),
        max_length=int(raw.get("max_length", 200)),
        pattern=raw.get("pattern"),
    )


def _permit_type(raw: dict[str, Any]) -> PermitType:
    code = raw["code"]
    if not re.fullmatch(r"[A-Z]{2,8}", raw["number_code"]):
        raise ValueError(f"{code}: number_code must be 2-8 capital letters")
    applicants = frozenset(raw.get("applicants") or APPLICANT_KINDS)
    if not applicants <= APPLICANT_KINDS:
        raise ValueError(f"{code}: applicants must be among {sorted(APPLICANT_KINDS)}")
    terms = Terms(
        sla_days=int(raw["sla_days"]),
        inspection_required=bool(raw["inspection"]),
        deemed_approval=bool(raw["deemed_approval"]),
        validity_years=raw.get("validity_years"),
        reminder_days=int(raw.get("reminder_days", 0)),
    )
    if terms.sla_days < 1:
        raise ValueError(f"{code}: sla_days must be at least 1")
    documents = tuple(
        DocumentSpec(d["code"], d["name"], bool(d.get("required", True))) for d in raw["documents"]
    )
    if len({d.code for d in documents}) != len(documents):
        raise ValueError(f"{code}: duplicate document codes")
    fields = tuple(_field(f, f"{code}.{f.get('name')}") for f in raw.get("fields") or ())
    variants = raw.get("variants") or {}
    variant_field = variants.get("field")
    values: dict[str, dict[str, Any]] = variants.get("values") or {}
    if variant_field is not None:
        spec = next((f for f in fields if f.name == variant_field), None)
        if spec is None or spec.kind != "choice":
            raise ValueError(f"{code}: variants must be keyed on a choice field")
        for value, overrides in values.items():
            if value not in spec.choices or not set(overrides) <= TERM_KEYS:
                raise ValueError(f"{code}: bad variant {value!r}")
    kept = raw.get("retained") or {}
    retained = Retained(frozenset(kept.get("fields") or ()), frozenset(kept.get("documents") or ()))
    if not retained.fields <= {f.name for f in fields} or not retained.documents <= {
        d.code for d in documents
    }:
        raise ValueError(f"{code}: retained fields and documents must be the type's own")
    return PermitType(
        code=code,
        name=raw["name"],
        number_code=raw["number_code"],
        opd=raw["opd"],
        dimension=raw["dimension"],
        applicant_kinds=applicants,
        documents=documents,
        fields=fields,
        terms=terms,
        variant_field=variant_field,
        variants=values,
        retained=retained,
    )


def load_catalogue(path: Path = DEFAULT_PATH) -> Catalogue:
    raw = yaml.safe_load(path.read_text())
    types = {t["code"]: _permit_type(t) for t in raw["permit_types"]}
    if len({t.number_code for t in types.values()}) != len(types):
        raise ValueError("permit types must have distinct number codes")
    kbli = {str(code): str(title) for code, title in (raw.get("kbli") or {}).items()}
    bad = [code for code in kbli if not re.fullmatch(r"\d{5}", code)]
    if bad:
        raise ValueError(f"KBLI codes must be 5 digits (quote them in YAML): {bad}")
    return Catalogue(permit_types=types, kbli=kbli)
