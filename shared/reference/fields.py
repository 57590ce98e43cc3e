"""Request field types built on the validators here, so every service's API checks a
NIK, a phone number or a desa code the same way and reports the same 422 message.

    class ReporterIn(BaseModel):
        nik: Nik
        phone: MobilePhone | None = None
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, validate_email
from pydantic_core import PydanticCustomError

from shared.reference.nik import InvalidNIK, parse_nik
from shared.reference.phone import InvalidPhone, normalize_mobile
from shared.reference.regions import UnknownRegion, require_desa


def _nik(value: str) -> str:
    try:
        return parse_nik(value).value
    except InvalidNIK as exc:
        raise ValueError(str(exc)) from None


def _mobile(value: str) -> str:
    try:
        return normalize_mobile(value)
    except InvalidPhone as exc:
        raise ValueError(str(exc)) from None


def contact(value: str) -> str:
    """An email address (lower case) or an Indonesian mobile number (+62…): a contact a
    citizen proves with a one-time code, normalised as its keyed hash is taken."""
    value = value.strip()
    if "@" in value:
        try:
            return validate_email(value)[1].lower()
        except PydanticCustomError:
            raise ValueError("bukan alamat email yang valid") from None
    return _mobile(value)


def _desa(value: str) -> str:
    try:
        return require_desa(value).code
    except UnknownRegion as exc:
        raise ValueError(str(exc)) from None


Nik = Annotated[
    str,
    Field(description="16-digit NIK (Nomor Induk Kependudukan)", examples=["3306061708900001"]),
    AfterValidator(_nik),
]
MobilePhone = Annotated[
    str,
    Field(
        description="Indonesian mobile number: 08…, 628… or +628…; stored as +628…", examples=["081234567890"]
    ),
    AfterValidator(_mobile),
]
Contact = Annotated[
    str,
    Field(
        min_length=3,
        max_length=254,
        examples=["081234567890", "warga@example.com"],
        description="Mobile number (08…, 628…, +628…) or email address",
    ),
    AfterValidator(contact),
]
DesaCode = Annotated[
    str,
    Field(description="Kemendagri code of a Purworejo desa/kelurahan", examples=["33.06.01.2001"]),
    AfterValidator(_desa),
]
