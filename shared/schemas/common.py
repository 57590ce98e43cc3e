"""Types shared by several domains' event payloads."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

Locale = Literal["id", "en"]
Channel = Literal["email", "sms", "whatsapp"]

# The citizen reference's one format (shared/kit/privacy.py makes it): version prefix,
# then 32 hex digits of the keyed HMAC of the NIK.
CITIZEN_REF_PREFIX = "cr1_"
CITIZEN_REF_PATTERN = rf"^{CITIZEN_REF_PREFIX}[0-9a-f]{{32}}$"

CitizenRef = Annotated[
    str,
    Field(
        pattern=CITIZEN_REF_PATTERN,
        description="Pseudonymous citizen reference: keyed HMAC of the NIK, never the NIK",
    ),
]
# A contact reference's one format (shared/kit/privacy.py makes it): its own prefix, so
# it never passes for a citizen reference, then 32 hex digits of the keyed HMAC of a phone
# number or email address.
CONTACT_REF_PREFIX = "ct1_"
ContactRef = Annotated[
    str,
    Field(
        pattern=rf"^{CONTACT_REF_PREFIX}[0-9a-f]{{32}}$",
        description="Pseudonymous contact reference: keyed HMAC of a phone number or email address",
    ),
]
# A data key's id (shared/kit/data_keys.py): version prefix, then 32 random hex digits.
DATA_KEY_ID_PATTERN = r"^dk1_[0-9a-f]{32}$"
DesaCode = Annotated[str, Field(pattern=r"^\d{2}\.\d{2}\.\d{2}\.\d{4}$", examples=["33.06.01.2001"])]
KecamatanCode = Annotated[str, Field(pattern=r"^\d{2}\.\d{2}\.\d{2}$", examples=["33.06.01"])]


def _data_key_id(description: str) -> Any:
    """The `key_id` of something sealed: absent on what was sealed before data keys."""
    return Field(None, pattern=DATA_KEY_ID_PATTERN, description=description)


class SealedContact(BaseModel):
    """Contact details sealed for the notification service: the phone number and email
    address never travel in clear on the bus (UU PDP 27/2022). Sealed with the citizen's
    own data key, named by `key_id` and held by the producing service only, so erasing
    the citizen (destroying that key) makes every copy on the log unreadable; events
    published before data keys (no `key_id`) were sealed with the deployment's one key."""

    model_config = ConfigDict(extra="allow", frozen=True)

    sealed: str = Field(description="Fernet token holding {'phone': ..., 'email': ...}")
    channels: list[Channel] = Field(description="Channels the sealed contact can reach")
    key_id: str | None = _data_key_id(
        "The citizen's data key, random (it names no one); the producer gives it to the"
        " notification service while the citizen's data is not erased"
    )


class SealedText(BaseModel):
    """What a citizen wrote (a complaint's title, a reopening's reason), sealed for the
    readers of citizens' text (the integration view): it never travels in clear on the bus
    (UU PDP 27/2022). Sealed with a text key derived one-way from the citizen's data key
    `key_id` (shared/kit/privacy.text_key), so a reader of text cannot open a contact, and
    erasing the citizen (destroying that data key) makes every copy unreadable."""

    model_config = ConfigDict(extra="allow", frozen=True)

    sealed: str = Field(description="Fernet token holding the UTF-8 text")
    key_id: str | None = _data_key_id(
        "The citizen's data key whose text key opens it (GET /internal/text-keys/{key_id}"
        " at the producer, while the citizen's data is not erased)"
    )


class AttachmentRef(BaseModel):
    """A photo or document as events name it: its id in the owning service and the
    SHA-256 of its bytes. The bytes stay in that service's store (officers download them
    there, audited); no file name, nothing the file says."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: UUID
    media_type: Literal["image/jpeg", "image/png", "application/pdf"]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=1, description="Bytes, as kept")
    label: str | None = Field(None, description="What it is for the case: a permit document's code")


class GeoPoint(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
