"""The consumers' side of data keys (shared/kit/data_keys.py): what they keep, for how
long, and how they answer an erased key and a producer that cannot answer; the text key
derived from a data key. The producer's side runs against PostgreSQL in
tests/integration/test_crypto_shredding.py."""

from __future__ import annotations

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from shared.kit.data_keys import (
    CACHE_SECONDS,
    DataKeyClient,
    KeyReaderToken,
    KeyServiceUnavailable,
    new_key_id,
)
from shared.kit.privacy import (
    ToSeal,
    ToSealText,
    open_citizen_text,
    open_contact,
    opened_texts,
    text_key,
    text_sealer,
)
from shared.kit.settings import PlatformSettings
from shared.schemas.common import SealedContact
from shared.schemas.complaints import ComplaintReopened

KEY = Fernet.generate_key().decode()
LIVE, ERASED, BROKEN = new_key_id(), new_key_id(), new_key_id()


class Producer:
    """A producer's key endpoint: counts what it is asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.erased: set[str] = {ERASED}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        key_id = request.url.path.rsplit("/", 1)[-1]
        self.asked.append(key_id)
        assert request.headers["authorization"].startswith("Bearer ")
        if key_id == BROKEN:
            return httpx.Response(503)
        if key_id in self.erased:
            return httpx.Response(404, json={"detail": "no such data key"})
        return httpx.Response(200, json={"key_id": key_id, "key": KEY})


def client_of(producer: Producer, clock: list[float]) -> DataKeyClient:
    keys = DataKeyClient(
        {"complaints": "http://complaints"},
        KeyReaderToken(PlatformSettings(), "sinergi-notifications", SecretStr("unused")),
        monotonic=lambda: clock[0],
    )
    transport = httpx.MockTransport(producer)
    keys.clients["complaints"] = httpx.AsyncClient(transport=transport, base_url="http://complaints")
    return keys


async def test_a_key_is_kept_for_minutes_at_most_and_forgotten_on_an_erasure() -> None:
    producer, clock = Producer(), [0.0]
    keys = client_of(producer, clock)
    assert await keys.keys([("complaints", LIVE), ("complaints", LIVE)]) == {LIVE: KEY}
    assert await keys.keys([("complaints", LIVE)]) == {LIVE: KEY}
    assert producer.asked == [LIVE]  # once, then from memory
    clock[0] = CACHE_SECONDS + 1
    await keys.keys([("complaints", LIVE)])
    assert producer.asked == [LIVE, LIVE]  # asked again once its time is up
    producer.erased.add(LIVE)
    keys.forget()
    assert await keys.keys([("complaints", LIVE)]) == {LIVE: None}


async def test_an_erased_key_is_none_and_a_producer_that_cannot_answer_fails_the_batch() -> None:
    keys = client_of(Producer(), [0.0])
    assert await keys.keys([("complaints", ERASED)]) == {ERASED: None}
    with pytest.raises(KeyServiceUnavailable):
        await keys.keys([("complaints", BROKEN)])
    with pytest.raises(KeyServiceUnavailable):
        await keys.keys([("permits", LIVE)])  # no address for it


def test_a_contact_to_seal_never_shows_its_clear_text() -> None:
    pending = ToSeal(sealed="", channels=["sms"]).pending("cr1_" + "0" * 32, b'{"phone": "+6281234567890"}')
    assert "+6281234567890" not in pending.model_dump_json()
    assert pending.to_seal[1] == b'{"phone": "+6281234567890"}'
    sealed = SealedContact(sealed=Fernet(KEY.encode()).encrypt(pending.to_seal[1]).decode(), channels=["sms"])
    assert open_contact(KEY, sealed) == {"phone": "+6281234567890"}
    with pytest.raises(ValueError):
        open_contact(Fernet.generate_key().decode(), sealed)


def test_a_text_key_is_derived_one_way_and_opens_text_but_no_contact() -> None:
    text = text_key(KEY)
    assert text == text_key(KEY) and text != KEY and text != text_key(Fernet.generate_key().decode())
    pending = ToSealText(sealed="").pending("cr1_" + "0" * 32, b"Nama saya Budi")
    assert "Budi" not in pending.model_dump_json()
    key_id = new_key_id()
    sealed = pending.sealed_with(key_id, KEY)
    assert sealed.key_id == key_id and "Budi" not in sealed.model_dump_json()
    assert open_citizen_text(text, sealed) == "Nama saya Budi"
    with pytest.raises(ValueError):
        open_citizen_text(KEY, sealed)  # the data key itself is not the text key
    contact = ToSeal(sealed="", channels=["sms"]).pending("cr1_" + "0" * 32, b'{"phone": "+6281234567890"}')
    with pytest.raises(ValueError):
        open_contact(text, contact.sealed_with(key_id, KEY))  # a reader of text opens no contact
    # A consumer opens an event's sealed texts by their clear name; a key gone leaves None.
    event = ComplaintReopened.model_construct(sealed_reason=sealed)
    assert opened_texts(event, {key_id: text}) == {"reason": "Nama saya Budi"}
    assert opened_texts(event, {}) == {"reason": None}
    # and the same from the event's data as JSON values (a kept template context), whose
    # other values are left alone.
    kept = {**event.model_dump(mode="json"), "sealed_note": {"sealed": "x"}, "reason_code": "other"}
    assert opened_texts(kept, {key_id: text}) == {"reason": "Nama saya Budi"}


def test_a_text_naming_no_one_is_sealed_all_the_same_with_a_key_of_its_own() -> None:
    seal = text_sealer(PlatformSettings(), nik=None)
    first, second = seal("Lampu mati"), seal("Lampu mati")
    assert isinstance(first, ToSealText) and isinstance(second, ToSealText)
    assert first.to_seal[0] != second.to_seal[0]  # no one to erase: no shared key either
    named = text_sealer(PlatformSettings(), nik="3306061708900001")
    assert named("a").to_seal[0] == named("b").to_seal[0]  # the citizen's one data key


class Provider:
    """An identity provider's discovery document and token endpoint: counts each."""

    def __init__(self) -> None:
        self.discoveries = 0
        self.tokens = 0
        self.failing = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/.well-known/openid-configuration"):
            self.discoveries += 1
            return httpx.Response(200, json={"token_endpoint": "http://idp/realms/sinergi/token"})
        assert request.method == "POST" and request.url.path == "/realms/sinergi/token"
        if self.failing:
            return httpx.Response(503)
        self.tokens += 1
        return httpx.Response(200, json={"access_token": f"token-{self.tokens}", "expires_in": 60})


async def test_the_discovery_document_is_read_once_and_again_only_after_a_failure() -> None:
    provider, clock = Provider(), [0.0]
    token = KeyReaderToken(
        PlatformSettings(oidc_issuer="http://idp/realms/sinergi"),
        "sinergi-notifications",
        SecretStr("secret"),
        client=httpx.AsyncClient(transport=httpx.MockTransport(provider)),
        monotonic=lambda: clock[0],
    )
    assert await token() == "token-1"
    assert await token() == "token-1"  # kept for half its life
    clock[0] = 31.0
    assert await token() == "token-2"
    assert (provider.discoveries, provider.tokens) == (1, 2)
    clock[0] = 62.0
    provider.failing = True
    with pytest.raises(KeyServiceUnavailable):
        await token()
    provider.failing = False
    assert await token() == "token-3"
    assert provider.discoveries == 2  # the endpoint is looked up again after the failure
    await token.close()
