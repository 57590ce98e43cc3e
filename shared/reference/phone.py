"""Indonesian mobile numbers: normalisation to E.164, plus masking of contact data.

Notifications (SMS/WhatsApp) can only reach mobile numbers, and the same citizen
writes their number as ``0812-3456-7890``, ``62812…`` or ``+62 812…``. Storing one
canonical E.164 form (``+62812…``) makes numbers comparable and deduplicable, and
rejecting landlines and foreign numbers early avoids undeliverable messages.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

__all__ = ["InvalidPhone", "mask_email", "mask_phone", "normalize_mobile"]

#: National significant number of an Indonesian mobile line (after 0 / 62 / +62).
MOBILE_NATIONAL_RE = re.compile(r"8[1-35-9][0-9]{7,10}")

_SEPARATORS_RE = re.compile(r"[\s\-.()\u00a0]")
_PREFIX_RE = re.compile(r"(?:\+62|62|0)([0-9]+)")
_COUNTRY_CODE = 62


class InvalidPhone(ValueError):
    """A phone number is not a usable Indonesian mobile number; message is user-facing.

    ``reason`` is a short stable code (e.g. ``"landline"``, ``"country"``).
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _foreign_country_code(cleaned: str) -> int | None:
    try:
        return phonenumbers.parse(cleaned, "ID").country_code
    except NumberParseException:
        return None


def normalize_mobile(raw: str) -> str:
    """Return the E.164 form (``+628…``) of an Indonesian mobile number.

    Accepts ``08…``, ``628…`` and ``+628…`` with optional spaces, dashes, dots and
    parentheses. Raises :class:`InvalidPhone` for anything else, including
    landlines (``021…``) and non-Indonesian numbers. Idempotent on its output.
    """
    if not isinstance(raw, str):
        raise InvalidPhone(f"phone number must be text, got {type(raw).__name__}", reason="type")
    cleaned = _SEPARATORS_RE.sub("", raw)
    if not cleaned:
        raise InvalidPhone("phone number is empty", reason="empty")
    if cleaned.startswith("+") and not cleaned.startswith(f"+{_COUNTRY_CODE}"):
        code = _foreign_country_code(cleaned)
        shown = f" (country code +{code})" if code is not None else ""
        raise InvalidPhone(
            f"{raw.strip()!r} is not an Indonesian number{shown}; use 08…, 628… or +628…",
            reason="country",
        )
    match = _PREFIX_RE.fullmatch(cleaned)
    if match is None:
        raise InvalidPhone(
            f"{raw.strip()!r} is not a phone number in the form 08…, 628… or +628…",
            reason="format",
        )
    national = match.group(1)
    if not national.startswith("8"):
        raise InvalidPhone(
            f"{raw.strip()!r} is not a mobile number (landline?); mobile numbers start with 08",
            reason="landline",
        )
    if MOBILE_NATIONAL_RE.fullmatch(national) is None:
        if national[1:2] in ("0", "4"):
            reason, detail = "prefix", f"unknown mobile prefix 0{national[:2]}"
        else:
            reason = "length"
            detail = f"mobile numbers have 10-13 digits starting with 08, got {len(national) + 1}"
        raise InvalidPhone(f"{raw.strip()!r}: {detail}", reason=reason)

    try:
        parsed = phonenumbers.parse(f"+{_COUNTRY_CODE}{national}", "ID")
    except NumberParseException as exc:  # pragma: no cover - regex already guarantees shape
        raise InvalidPhone(f"{raw.strip()!r}: {exc}", reason="format") from exc
    if parsed.country_code != _COUNTRY_CODE or not phonenumbers.is_possible_number_for_type(
        parsed, PhoneNumberType.MOBILE
    ):
        raise InvalidPhone(f"{raw.strip()!r} is not a possible Indonesian mobile number", reason="possible")
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


def mask_phone(e164: str) -> str:
    """Mask a phone number for logs: ``+6281234567890`` -> ``+62812*****890``.

    Keeps the country code, the operator prefix (3 digits) and the last 3 digits.
    Input that is not a valid mobile number keeps only its last 3 characters, so
    the function never leaks more than it would for a valid number.
    """
    try:
        text = normalize_mobile(e164)
    except InvalidPhone:
        text = str(e164).strip()
        if len(text) <= 6:
            return "*" * len(text)
        return "*" * (len(text) - 3) + text[-3:]
    return text[:6] + "*" * (len(text) - 9) + text[-3:]


def mask_email(addr: str) -> str:
    """Mask an e-mail address for logs: ``alice@example.com`` -> ``a***@example.com``.

    The number of stars is fixed so the local part's length is not revealed.
    """
    local, at, domain = addr.strip().rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"
