"""One-time codes: the pure rules (no I/O), and the session key a production deployment
must configure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr

from services.notifications.domain import (
    CODE_ATTEMPTS,
    CODE_RULE,
    CODE_VALIDITY,
    CodeChallenge,
    Notification,
    Outcome,
    RetryPolicy,
    SendResult,
    Status,
    code_fallback,
    code_hash,
    code_message,
    code_notification,
    is_code,
    new_code,
)
from shared.kit.citizen import DEV_SIGNING_KEY, SessionSigner, signing_key_pem
from shared.kit.settings import PlatformSettings

KEY = "test-key"
NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
CONTACT = "ct1_" + "a" * 32


def challenge(code: str = "123456") -> CodeChallenge:
    return CodeChallenge.issue(
        contact_ref=CONTACT, kind="phone", hashed=code_hash(KEY, CONTACT, code), now=NOW
    )


def test_codes_are_six_digits_and_only_six_digits() -> None:
    assert all(is_code(new_code()) for _ in range(200))
    assert len({new_code() for _ in range(200)}) > 150  # random, not a sequence
    for bad in ("12345", "1234567", "12345a", "١٢٣٤٥٦", " 123456", ""):
        assert not is_code(bad), bad


def test_the_right_code_opens_once_within_five_minutes() -> None:
    c = challenge()
    assert c.expires_at == NOW + CODE_VALIDITY == NOW + timedelta(minutes=5)
    assert c.verify(code_hash(KEY, CONTACT, "123456"), NOW + timedelta(minutes=4))
    assert not c.verify(code_hash(KEY, CONTACT, "123456"), NOW + timedelta(minutes=4))  # replay


def test_an_expired_code_is_refused() -> None:
    c = challenge()
    assert not c.verify(code_hash(KEY, CONTACT, "123456"), NOW + CODE_VALIDITY)


def test_five_wrong_tries_kill_the_code() -> None:
    c = challenge()
    for _ in range(CODE_ATTEMPTS):
        assert not c.verify(code_hash(KEY, CONTACT, "654321"), NOW)
    assert c.attempts == 5
    assert not c.verify(code_hash(KEY, CONTACT, "123456"), NOW)
    assert c.attempts == 5  # a dead code counts nothing more


def test_a_code_is_bound_to_its_contact_and_to_the_key() -> None:
    other = "ct1_" + "b" * 32
    assert code_hash(KEY, CONTACT, "123456") != code_hash(KEY, other, "123456")
    assert code_hash(KEY, CONTACT, "123456") != code_hash("another-key", CONTACT, "123456")
    assert "123456" not in code_hash(KEY, CONTACT, "123456")


def test_the_message_holds_the_code_and_its_validity_only() -> None:
    subject, body = code_message("042517")
    assert subject == "Kode verifikasi Sinergi"
    assert body == (
        "Kode verifikasi Sinergi Anda: 042517. Berlaku 5 menit. "
        "Jangan berikan kode ini kepada siapa pun, termasuk petugas."
    )


# What a code's notification keeps sealed, and whose request it serves.
SEALED = {
    "address_sealed": "sealed-address",
    "address_masked": "+62812*****890",
    "body_sealed": "sealed-body",
    "correlation_id": "c-1",
}


def a_code(channel: str, subject: str | None = None) -> Notification:
    return code_notification(now=NOW, contact_ref=CONTACT, channel=channel, subject=subject, **SEALED)


def test_a_code_notification_is_urgent_sealed_and_cannot_be_resent() -> None:
    n = a_code("whatsapp", subject="Kode verifikasi Sinergi")
    assert n.rule_id == CODE_RULE and n.urgent and n.due_at == NOW
    assert n.body == "sealed-body" and n.subject is None  # a subject is for email only
    assert n.context is None  # nothing to compose it again from: resending is refused
    assert n.citizen_ref is None and n.recipient_key == CONTACT


def test_production_refuses_to_sign_sessions_without_its_own_key() -> None:
    production = PlatformSettings(environment="production")
    with pytest.raises(RuntimeError, match="NOTIFICATIONS_CITIZEN_SIGNING_KEY"):
        signing_key_pem(None, production)
    with pytest.raises(RuntimeError, match="NOTIFICATIONS_CITIZEN_SIGNING_KEY"):
        signing_key_pem(SecretStr(DEV_SIGNING_KEY), production)
    assert signing_key_pem(None, PlatformSettings()) == DEV_SIGNING_KEY


def test_a_session_key_must_be_p256() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError, match="P-256"):
        SessionSigner(p384.decode(), "http://issuer")
    hex_key = SessionSigner("5" * 64, "http://issuer")  # `openssl rand -hex 32`, as deployed
    assert hex_key.kid != SessionSigner(DEV_SIGNING_KEY, "http://issuer").kid
    signer = SessionSigner(DEV_SIGNING_KEY, "http://issuer/")
    (jwk,) = signer.jwks()["keys"]
    assert jwk["kid"] == signer.kid and "d" not in jwk and signer.issuer == "http://issuer"


def _sent_code(channel: str) -> Notification:
    n = a_code(channel)
    n.start_sending(NOW, timedelta(minutes=2))
    return n


@pytest.mark.parametrize("outcome", [Outcome.PERMANENT, Outcome.TEMPORARY])
def test_a_code_whatsapp_does_not_take_goes_by_sms_at_once_and_whatsapp_is_not_retried(
    outcome: Outcome,
) -> None:
    n = _sent_code("whatsapp")
    later = NOW + timedelta(seconds=3)
    result, fallback = code_fallback(n, SendResult(outcome, "gateway said no"), later, ["whatsapp", "sms"])
    assert fallback is not None
    assert (fallback.channel, fallback.due_at, fallback.status) == ("sms", later, Status.CREATED)
    assert (fallback.body, fallback.address_sealed, fallback.recipient_key) == (
        "sealed-body",
        "sealed-address",
        CONTACT,
    )
    assert fallback.source_event_id == n.source_event_id and fallback.id != n.id  # the same request
    assert fallback.urgent and fallback.rule_id == CODE_RULE and fallback.correlation_id == "c-1"
    n.record(result, later, RetryPolicy())
    assert n.status == Status.PERMANENT_FAILURE and n.last_error == "gateway said no; the code goes by sms"


def test_a_code_falls_back_only_from_whatsapp_to_a_configured_sms_on_a_refusal() -> None:
    refused = SendResult(Outcome.PERMANENT, "no")
    for n, result, configured in (
        (_sent_code("whatsapp"), refused, ["whatsapp"]),  # no SMS gateway: nothing to fall back to
        (_sent_code("sms"), refused, ["whatsapp", "sms"]),  # SMS is the last phone channel
        (_sent_code("whatsapp"), SendResult(Outcome.DELIVERED), ["whatsapp", "sms"]),
        (_sent_code("whatsapp"), SendResult(Outcome.TECHNICAL, "sealed"), ["whatsapp", "sms"]),  # our side
    ):
        assert code_fallback(n, result, NOW, configured) == (result, None)
    other = _sent_code("whatsapp")
    other.rule_id = "complaint-filed"  # not a code: the retry schedule holds
    assert code_fallback(other, refused, NOW, ["whatsapp", "sms"]) == (refused, None)
