"""Personal data on the bus, kept minimal (UU PDP 27/2022).

- The NIK never leaves its service: events carry a pseudonymous citizen reference, a
  keyed HMAC of the NIK, so the integration view can join one citizen's timeline
  across domains without being able to recover the NIK.
- Contact details travel sealed (Fernet) for the notification service only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken

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
    payload = {k: v for k, v in (("phone", phone), ("email", email)) if v}
    token = Fernet(key.encode()).encrypt(json.dumps(payload).encode()).decode()
    channels: list = (["email"] if email else []) + (["sms", "whatsapp"] if phone else [])
    return SealedContact(sealed=token, channels=channels)


def seal_for_notifications(
    platform: PlatformSettings, *, phone: str | None = None, email: str | None = None
) -> SealedContact | None:
    """A producer's one way to put a citizen's contact on the bus: sealed with the
    deployment's contact key, which only the notification service also holds."""
    return seal_contact(platform.contact_key.get_secret_value(), phone=phone, email=email)


def contact_ref_for(
    platform: PlatformSettings, *, phone: str | None = None, email: str | None = None
) -> str | None:
    """The one contact reference a producer's event carries for what a citizen gave: the
    phone's when there is one, else the email's (phones are how most citizens prove
    themselves, by WhatsApp or SMS). A citizen session proving that contact finds the case."""
    refs = contact_refs(platform.citizen_ref_key.get_secret_value(), phone=phone, email=email)
    return refs[0] if refs else None


def open_contact(key: str, contact: SealedContact) -> dict[str, str]:
    """Unseal a contact (notification service only). Raises ValueError on a bad token."""
    try:
        return json.loads(Fernet(key.encode()).decrypt(contact.sealed.encode()))
    except InvalidToken as exc:
        raise ValueError("sealed contact cannot be opened with this key") from exc


def seal_text(key: str, text: str) -> str:
    """Seal a short secret text (a message holding a one-time code) with the contact key."""
    return Fernet(key.encode()).encrypt(text.encode()).decode()


def open_text(key: str, sealed: str) -> str:
    """Open `seal_text`'s token. Raises ValueError on a bad token."""
    try:
        return Fernet(key.encode()).decrypt(sealed.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("sealed text cannot be opened with this key") from exc
