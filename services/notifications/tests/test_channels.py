"""The email channel and the template store's lookups, against a local relay (or none):
an unreachable relay is a temporary failure that costs no message building, the host's
name is looked up once, a batch goes over a few reused connections, a dropped
connection costs only the message in flight, and the message decodes as it was meant."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
from email.message import EmailMessage
from pathlib import Path

import pytest

from services.notifications import channels
from services.notifications.channels import EmailChannel, OutgoingMessage, SmtpConfig
from services.notifications.domain import Outcome
from services.notifications.templates import TemplateStore
from services.notifications.tests.relay import Relay

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def message(
    to: str = "warga@example.com", subject: str = "Subjek", body: str = "Isi pesan\n"
) -> OutgoingMessage:
    return OutgoingMessage("n-1", "email", to, subject, body, "id", "ADU-2611-X")


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage) and not message.defects
    return message


def channel_to(relay: Relay, connections: int = 4) -> EmailChannel:
    config = SmtpConfig(
        host=relay.host,
        port=relay.port,
        sender="Sinergi <noreply@purworejokab.go.id>",
        local_hostname="sinergi.test",
        connections=connections,
    )
    return EmailChannel(config)


def batch(n: int) -> list[OutgoingMessage]:
    return [message(to=f"warga-{i}@example.com", subject=f"Pesan {i}") for i in range(n)]


async def test_an_unreachable_relay_is_temporary_and_the_fqdn_is_looked_up_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lookups: list[str] = []
    monkeypatch.setattr(channels.socket, "getfqdn", lambda: lookups.append("x") or "sinergi.test")
    channel = EmailChannel(SmtpConfig(host="127.0.0.1", port=closed_port(), sender="Sinergi <a@b.go.id>"))
    built: list[OutgoingMessage] = []
    monkeypatch.setattr(channel, "build", lambda msg: built.append(msg))
    for _ in range(3):
        result = await channel.send(message())
        assert result.outcome == Outcome.TEMPORARY and "SMTPConnectError" in (result.error or "")
    assert lookups == ["x"]
    assert built == []  # composed only once connected


async def test_a_configured_ehlo_name_is_used_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(channels.socket, "getfqdn", lambda: pytest.fail("looked up"))
    config = SmtpConfig(host="127.0.0.1", port=closed_port(), sender="a@b.go.id", local_hostname="mail.go.id")
    assert (await EmailChannel(config).send(message())).outcome == Outcome.TEMPORARY


def test_the_message_carries_the_sender_once_formatted() -> None:
    built = EmailChannel(
        SmtpConfig(host=None, port=25, sender="Sinergi Purworejo <noreply@purworejokab.go.id>")
    )
    mail = parsed(built.build(message()))
    assert mail["From"] == "Sinergi Purworejo <noreply@purworejokab.go.id>"
    assert mail["Message-ID"].endswith("@purworejokab.go.id>") and mail["Date"] is not None
    assert mail["Content-Language"] == "id" and mail["X-Sinergi-Tracking-Code"] == "ADU-2611-X"
    assert mail["X-Sinergi-Notification-Id"] == "n-1" and mail["To"] == "warga@example.com"
    assert mail.get_content_type() == "text/plain" and mail.get_content_charset() == "utf-8"
    assert mail.get_content() == "Isi pesan\n" and mail["Content-Transfer-Encoding"] == "7bit"


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Pengaduan Anda telah kami terima — ADU-2611-ABCD-EFGH-JKMNP", "Terima kasih.\n"),
        ("Layanan: jadwal kunjungan Anda di RSUD dr. Tjitrowardojo telah dikonfirmasi dan dicatat", "Ya.\n"),
        ("Ringkas", "Yth. Bapak/Ibu, " * 20 + "\n\n  baris dengan spasi di akhir   \n.\n"),
        (
            "Permohonan izin “IMB” — diterima ✓",
            "Kode: ADU-2611 — pantau di https://sinergi.example/lacak\n" * 3,
        ),
        ("", "tanpa subjek"),
    ],
)
def test_the_message_decodes_to_what_was_meant(subject: str, body: str) -> None:
    built = EmailChannel(SmtpConfig(host=None, port=25, sender="Sinergi <noreply@purworejokab.go.id>"))
    raw = built.build(message(subject=subject, body=body))
    assert raw.isascii()  # any relay takes it, 8BITMIME or not
    assert all(len(line) <= 78 for line in raw.split(b"\r\n")[:12])  # headers folded
    mail = parsed(raw)
    assert mail["Subject"] == (subject or "Sinergi")
    assert mail.get_content() == (body if body.endswith("\n") else body + "\n")


def test_a_line_break_in_a_value_cannot_add_a_header() -> None:
    built = EmailChannel(SmtpConfig(host=None, port=25, sender="a@b.go.id"))
    mail = parsed(built.build(message(subject="Halo\r\nBcc: mata-mata@example.com")))
    assert mail["Bcc"] is None and mail["Subject"] == "Halo Bcc: mata-mata@example.com"


async def test_a_batch_goes_over_a_few_reused_connections() -> None:
    with Relay() as relay:
        results = await channel_to(relay).send_many(batch(10))
        assert [r.outcome for r in results] == [Outcome.DELIVERED] * 10
        assert relay.connections == 4  # not one per message
        assert sorted(str(m["To"]) for m in relay.accepted) == sorted(
            f"warga-{i}@example.com" for i in range(10)
        )
        assert all(r.provider_ref == "Message accepted for delivery" for r in results)

        one = await channel_to(relay).send(message())
        assert one.outcome == Outcome.DELIVERED and relay.connections == 5


async def test_a_session_keeps_its_connections_for_the_next_batch() -> None:
    with Relay() as relay:
        async with channel_to(relay).session() as session:
            for _ in range(3):
                results = await session.send_many(batch(8))
                assert {r.outcome for r in results} == {Outcome.DELIVERED}
            assert relay.connections == 4
            relay.hang_up()  # the relay closes them while they wait
            await asyncio.sleep(0.1)
            results = await session.send_many(batch(2))
            assert {r.outcome for r in results} == {Outcome.DELIVERED}
            assert relay.connections == 6 and len(relay.accepted) == 26


async def test_refused_recipients_keep_their_outcomes_and_the_connection() -> None:
    with Relay() as relay:
        relay.refuse = {
            "warga-1@example.com": "550 5.1.1 no such mailbox",
            "warga-3@example.com": "451 4.3.0 try again later",
        }
        results = await channel_to(relay, connections=1).send_many(batch(5))
        outcomes = [r.outcome for r in results]
        assert outcomes == [
            Outcome.DELIVERED,
            Outcome.PERMANENT,
            Outcome.DELIVERED,
            Outcome.TEMPORARY,
            Outcome.DELIVERED,
        ]
        assert (
            results[1].error == "recipient refused: [550]" and results[3].error == "recipient refused: [451]"
        )
        assert relay.connections == 1 and len(relay.accepted) == 3


async def test_a_dropped_connection_costs_only_the_message_in_flight() -> None:
    with Relay(drop_at={3}) as relay:
        results = await channel_to(relay, connections=1).send_many(batch(6))
        outcomes = [r.outcome for r in results]
        assert outcomes == [Outcome.DELIVERED] * 2 + [Outcome.TEMPORARY] + [Outcome.DELIVERED] * 3
        assert "SMTPServerDisconnected" in (results[2].error or "")
        assert relay.connections == 2  # the rest went over a new one
        assert sorted(str(m["To"]) for m in relay.accepted) == [
            f"warga-{i}@example.com" for i in (0, 1, 3, 4, 5)
        ]


async def test_a_relay_that_keeps_dropping_leaves_the_rest_waiting_and_nothing_doubled() -> None:
    with Relay(drop_from=5) as relay:
        results = await channel_to(relay, connections=2).send_many(batch(12))
        delivered = {
            f"warga-{i}@example.com" for i, r in enumerate(results) if r.outcome == Outcome.DELIVERED
        }
        assert len(delivered) == 4
        assert sorted(str(m["To"]) for m in relay.accepted) == sorted(delivered)
        assert all(r.outcome == Outcome.TEMPORARY for r in results if r.outcome != Outcome.DELIVERED)
        # Each connection that had carried something tried once more, then gave up.
        assert relay.connections == 4


async def test_an_unconfigured_channel_fails_every_message_technically() -> None:
    channel = EmailChannel(SmtpConfig(host=None, port=25, sender="a@b.go.id"))
    results = await channel.send_many(batch(3))
    assert [r.outcome for r in results] == [Outcome.TECHNICAL] * 3
    assert await channel.send_many([]) == []


async def test_a_bad_address_fails_alone() -> None:
    with Relay() as relay:
        messages = [*batch(2), message(to="war ga@example.com"), *batch(2)]
        results = await channel_to(relay, connections=1).send_many(messages)
        assert [r.outcome for r in results] == [Outcome.DELIVERED] * 2 + [Outcome.TECHNICAL] + [
            Outcome.DELIVERED
        ] * 2
        assert relay.connections == 1


def test_template_lookups_stat_the_files_as_the_loader_would() -> None:
    store = TemplateStore(TEMPLATES)
    assert store.exists("id/complaints/filed.email.j2")
    assert not store.exists("id/complaints/no_such.email.j2")
    assert not store.exists("id/complaints")  # a folder is not a template
    assert not store.exists("../rules.yaml")  # nothing outside the templates folder
