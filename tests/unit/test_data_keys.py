"""The notification service's side of data keys (shared/kit/data_keys.py): what it keeps,
for how long, and how it answers an erased key and a producer that cannot answer. The
producer's side runs against PostgreSQL in tests/integration/test_crypto_shredding.py."""

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
from shared.kit.privacy import ToSeal, open_contact
from shared.kit.settings import PlatformSettings
from shared.schemas.common import SealedContact

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
