"""Personal data on the bus, kept minimal (UU PDP 27/2022).

- The NIK never leaves its service: events carry a pseudonymous citizen reference, a
  keyed HMAC of the NIK, so the integration view can join one citizen's timeline
  across domains without being able to recover the NIK.
- Contact details travel sealed for the notification service only, with the citizen's
  own data key (shared/kit/data_keys.py), which erasure destroys.
- What a citizen wrote (a complaint's title) travels sealed with the citizen's text key,
  derived one-way from that data key: its readers (the integration view) get the text
  key only, which opens no contact; erasure destroys both at once.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Self

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import BaseModel, PrivateAttr

from shared.schemas.common import CITIZEN_REF_PREFIX, CONTACT_REF_PREFIX, SealedContact, SealedText

if TYPE_CHECKING:
    from shared.kit.settings import PlatformSettings

__all__ = [
    "CITIZEN_REF_PREFIX",
    "CONTACT_REF_PREFIX",
    "citizen_ref",
    "contact_ref",
    "contact_ref_for",
    "open_citizen_text",
    "open_contact",
    "open_text",
    "opened_texts",
    "seal_contact",
    "seal_for_notifications",
    "seal_text",
    "sealed_texts",
    "text_key",
    "text_sealer",
]

# A verified contact's pseudonym (the subject of a citizen session), CONTACT_REF_PREFIX:
# distinct from a citizen_ref by its prefix and by what is hashed, so one can never pass
# for the other.


class PendingSeal(BaseModel):
    """A value the use case has in clear, to be sealed with its citizen's data key when the
    unit of work stages the event (`data_keys.seal_pending`). Until then `sealed` is empty:
    if it ever reached the bus unsealed, nothing could be read from it."""

    # A private attribute: never part of a dump, so never of an event's JSON.
    _to_seal: tuple[str, bytes] = PrivateAttr(default=("", b""))

    def pending(self, subject: str, clear: bytes) -> Self:
        self._to_seal = (subject, clear)
        return self

    @property
    def to_seal(self) -> tuple[str, bytes]:
        return self._to_seal

    def sealed_with(self, key_id: str, key: str) -> BaseModel:
        """The value sealed with the citizen's data key `key` (named `key_id`)."""
        raise NotImplementedError


class ToSeal(SealedContact, PendingSeal):
    """A contact to seal with its citizen's data key itself (the notification service's)."""

    def sealed_with(self, key_id: str, key: str) -> SealedContact:
        token = Fernet(key.encode()).encrypt(self.to_seal[1]).decode()
        return SealedContact(sealed=token, channels=self.channels, key_id=key_id)


class ToSealText(SealedText, PendingSeal):
    """A citizen's text to seal with the text key of their data key (readers of text)."""

    def sealed_with(self, key_id: str, key: str) -> SealedText:
        token = Fernet(text_key(key).encode()).encrypt(self.to_seal[1]).decode()
        return SealedText(sealed=token, key_id=key_id)


# What the text key is derived for: changing it changes every text key.
_TEXT_KEY_INFO = b"sinergi citizen text key v1"


def text_key(data_key: str) -> str:
    """The text key of a citizen's data key (a Fernet key), derived with HKDF-SHA256: the
    data key gives it, it does not give the data key, so whoever may read what citizens
    wrote cannot open their contacts."""
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_TEXT_KEY_INFO).derive(
        base64.urlsafe_b64decode(data_key.encode())
    )
    return base64.urlsafe_b64encode(derived).decode()


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
    subject = _subject(platform, nik=nik, phone=phone, email=email)
    if subject is None:
        return None
    return ToSeal(sealed="", channels=_channels(phone, email)).pending(subject, _contact_json(phone, email))


def text_sealer(
    platform: PlatformSettings, *, nik: str | None, phone: str | None = None, email: str | None = None
) -> Callable[[str], SealedText]:
    """A producer's one way to put what a citizen wrote on the bus: each text sealed, when
    the unit of work stages the event, with the text key of the citizen's data key (as
    `seal_for_notifications` names the citizen). A report naming no one cannot be erased
    by anyone: its text gets a key of its own, so it travels sealed all the same."""
    subject = _subject(platform, nik=nik, phone=phone, email=email)

    def seal(text: str) -> SealedText:
        return ToSealText(sealed="").pending(subject or "text:" + secrets.token_hex(16), text.encode())

    return seal


def _subject(
    platform: PlatformSettings, *, nik: str | None, phone: str | None, email: str | None
) -> str | None:
    """Whose data key seals what a citizen gave: their NIK's reference, else their contact's."""
    key = platform.citizen_ref_key.get_secret_value()
    if nik:
        return citizen_ref(nik, key)
    refs = contact_refs(key, phone=phone, email=email)
    return refs[0] if refs else None


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


def open_citizen_text(key: str, text: SealedText) -> str:
    """Open a citizen's sealed text with its text key (`text_key`). Raises ValueError on a
    bad token or another key."""
    return open_sealed(key, text.sealed).decode()


# An event's sealed text `sealed_<name>` is what its `<name>` said in clear before.
SEALED_PREFIX = "sealed_"


def sealed_texts(data: BaseModel | Mapping[str, Any]) -> dict[str, SealedText]:
    """An event's sealed texts by field (`sealed_title`: ...), from its parsed data or its
    data as JSON values (what a consumer kept of it)."""
    if isinstance(data, BaseModel):
        found = ((name, getattr(data, name)) for name in _sealed_fields(type(data)))
        return {name: value for name, value in found if isinstance(value, SealedText) and value.key_id}
    kept = {
        name: SealedText.model_validate(value)
        for name, value in data.items()
        if name.startswith(SEALED_PREFIX) and isinstance(value, Mapping)
    }
    return {name: value for name, value in kept.items() if value.key_id}


@functools.cache
def _sealed_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields of `model` that may hold a sealed text: asked per event by every
    consumer of citizens' text, so worked out once per event type (an extra field is
    never one, it stays the JSON it arrived as)."""
    return tuple(name for name, f in model.model_fields.items() if _mentions(f.annotation, SealedText))


def _mentions(annotation: object, wanted: type) -> bool:
    return annotation is wanted or any(_mentions(arg, wanted) for arg in typing.get_args(annotation))


def opened_texts(
    data: BaseModel | Mapping[str, Any], text_keys: Mapping[str, str | None]
) -> dict[str, str | None]:
    """An event's sealed texts opened with `text_keys` (key id -> text key), by their clear
    name (`title`: ...); None where the key is gone (the citizen's data erased) or does
    not open it."""
    opened: dict[str, str | None] = {}
    for name, sealed in sealed_texts(data).items():
        key = text_keys.get(sealed.key_id or "")
        try:
            opened[name.removeprefix(SEALED_PREFIX)] = None if key is None else open_citizen_text(key, sealed)
        except ValueError:
            opened[name.removeprefix(SEALED_PREFIX)] = None
    return opened
