"""The email channel's per-message costs and the template store's lookups, without a
real SMTP server: an unreachable relay is a temporary failure that costs no message
building, and the host's name is looked up once."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from services.notifications import channels
from services.notifications.channels import EmailChannel, OutgoingMessage, SmtpConfig
from services.notifications.domain import Outcome
from services.notifications.templates import TemplateStore

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def message() -> OutgoingMessage:
    return OutgoingMessage("n-1", "email", "warga@example.com", "Subjek", "Isi pesan\n", "id", "ADU-2611-X")


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
    email = built.build(message())
    assert email["From"] == "Sinergi Purworejo <noreply@purworejokab.go.id>"
    assert email["Message-ID"].endswith("@purworejokab.go.id>")
    assert email["Content-Language"] == "id" and email["X-Sinergi-Tracking-Code"] == "ADU-2611-X"


def test_template_lookups_stat_the_files_as_the_loader_would() -> None:
    store = TemplateStore(TEMPLATES)
    assert store.exists("id/complaints/filed.email.j2")
    assert not store.exists("id/complaints/no_such.email.j2")
    assert not store.exists("id/complaints")  # a folder is not a template
    assert not store.exists("../rules.yaml")  # nothing outside the templates folder
