"""Personal data on the bus, kept minimal (UU PDP 27/2022).

- The NIK never leaves its service: events carry a pseudonymous citizen reference, a
  keyed HMAC of the NIK, so the integration view can join one citizen's timeline
  across domains without being able to recover the NIK.
- Contact details travel sealed for the notification service only, with the citizen's
  own data key (shared/kit/data_keys.py), which erasure destroys.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken
from pydantic import PrivateAttr

from shared.schemas.common import CITIZEN_REF_PREFIX, SealedContact

if TYPE_CHECKING:
    from shared.kit.settings import PlatformSettings

__all__ = [
    "CITIZEN_REF_PREFIX",
    "CONTACT_REF_PREFIX",
    "citizen_ref",
    "contact_ref",
    "contact_ref_for",
    "open_contact",
    "open_text",
    "seal_contact",
    "seal_for_notifications",
    "seal_text",
]

# A verified contact's pseudonym (the subject of a citizen session): distinct from a
# citizen_ref by its prefix and by what is hashed, so one can never pass for the other.
CONTACT_REF_PREFIX = "ct1_"


class ToSeal(SealedContact):
    """A contact the use case has in clear, to be sealed with its citizen's data key when
    the unit of work stages the event (`seal_pending`). Until then `sealed` is empty: if it
    ever reached the bus unsealed, nothing could be read from it."""

    # A private attribute: never part of a dump, so never of an event's JSON.
    _to_seal: tuple[str, bytes] = PrivateAttr(default=("", b""))

    def pending(self, subject: str, clear: bytes) -> ToSeal:
        self._to_seal = (subject, clear)
        return self

    @property
    def to_seal(self) -> tuple[str, bytes]:
        return self._to_seal


def open_sealed(key: str, token: str) -> bytes:
    """Decrypt a token sealed with a data key. Raises ValueError on a bad token or key."""
    try:
        return Fernet(key.encode()).decrypt(token.encode())
    except (InvalidToken, ValueError, TypeError) as exc:
        raise ValueError("sealed value cannot be opened with this key") from exc


def citizen_ref(nik: str, key: str) -> str:
    digest = hmac.new(key.encode(), nik.encode(), hashlib.sha256).hexdigest()
    return CITIZEN_REF_PREFIX + digest[:32]


def contact_ref(contact: str, key: str) -> str:
    """The keyed hash of a normalised contact (+62… or a lower-case email address): the
    same contact gives the same reference in every service holding the key."""
    digest = hmac.new(key.encode(), b"contact:" + contact.encode(), hashlib.sha256).hexdigest()
    return CONTACT_REF_PREFIX + digest[:32]


def contact_refs(key: str, *, phone: str | None = None, email: str | None = None) -> list[str]:
    """The keyed hashes of a citizen's phone number (E.164, first) and email address, as
    a session proving either carries them."""
    return [contact_ref(value, key) for value in (phone, email.lower() if email else None) if value]


def seal_contact(key: str, *, phone: str | None = None, email: str | None = None) -> SealedContact | None:
    if not phone and not email:
        return None
    token = Fernet(key.encode()).encrypt(_contact_json(phone, email)).decode()
    return SealedContact(sealed=token, channels=_channels(phone, email))


def seal_for_notifications(
    platform: PlatformSettings, *, nik: str | None, phone: str | None = None, email: str | None = None
) -> SealedContact | None:
    """A producer's one way to put a citizen's contact on the bus: sealed, when the unit
    of work stages the event, with the data key of the citizen (their NIK's reference;
    without a NIK, the contact's), which the producer alone keeps and erasure destroys."""
    if not phone and not email:
        return None
    key = platform.citizen_ref_key.get_secret_value()
    subject = citizen_ref(nik, key) if nik else contact_refs(key, phone=phone, email=email)[0]
    return ToSeal(sealed="", channels=_channels(phone, email)).pending(subject, _contact_json(phone, email))


def _channels(phone: str | None, email: str | None) -> list[Any]:
    return (["email"] if email else []) + (["sms", "whatsapp"] if phone else [])


def _contact_json(phone: str | None, email: str | None) -> bytes:
    return json.dumps({k: v for k, v in (("phone", phone), ("email", email)) if v}).encode()


def contact_ref_for(
    platform: PlatformSettings, *, phone: str | None = None, email: str | None = None
) -> str | None:
    """The one contact reference a producer's event carries for what a citizen gave: the
    phone's when there is one, else the email's (phones are how most citizens prove
    themselves, by WhatsApp or SMS). A citizen session proving that contact finds the case."""
    refs = contact_refs(platform.citizen_ref_key.get_secret_value(), phone=phone, email=email)
    return refs[0] if refs else None


def open_contact(key: str, contact: SealedContact) -> dict[str, str]:
    """Unseal a contact (notification service only) with its data key (or, for a contact
    without `key_id`, the notification service's contact key). Raises ValueError on a
    bad token."""
    return json.loads(open_sealed(key, contact.sealed))


def seal_text(key: str, text: str) -> str:
    """Seal a short secret text (a message holding a one-time code) with the contact key."""
    return Fernet(key.encode()).encrypt(text.encode()).decode()


def open_text(key: str, sealed: str) -> str:
    """Open `seal_text`'s token. Raises ValueError on a bad token."""
    return open_sealed(key, sealed).decode()
