"""The abuse limits' pure parts (shared/kit/limits.py): who the client is behind the edge
proxy, how a deployment's settings change a rule, and keys that never hold the value.
The statement itself runs against PostgreSQL in tests/integration/test_abuse_limits.py."""

from __future__ import annotations

from ipaddress import ip_network

import pytest
from starlette.requests import Request

from shared.kit.limits import Limit, client_address, configured, limit_key, take
from shared.kit.settings import PlatformSettings, Rate

EDGE = [ip_network("172.28.0.0/16")]


def request(peer: str | None, *forwarded: str) -> Request:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return Request({"type": "http", "headers": headers, "client": (peer, 5000) if peer else None})


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # Straight from the internet: the peer, whatever it claims to forward for.
        ("203.0.113.7", ["198.51.100.1"], "203.0.113.7"),
        # Through the edge: the address the edge saw (the last entry it appended).
        ("172.28.0.5", ["198.51.100.1"], "198.51.100.1"),
        # A client's own X-Forwarded-For is to the left of what the edge appends.
        ("172.28.0.5", ["10.9.9.9, 198.51.100.1"], "198.51.100.1"),
        ("172.28.0.5", ["10.9.9.9", "198.51.100.1"], "198.51.100.1"),
        # Two trusted hops (the regency's proxy inside the trusted network, then the edge).
        ("172.28.0.5", ["198.51.100.1, 172.28.0.9"], "198.51.100.1"),
        # The edge without the header, or only trusted hops: the first one known.
        ("172.28.0.5", [], "172.28.0.5"),
        ("172.28.0.5", ["172.28.0.9"], "172.28.0.9"),
        # What the edge appended is not an address: still that entry (hashed), never a
        # spoofed one to its left.
        ("172.28.0.5", ["198.51.100.1, nonsense"], "nonsense"),
        ("2001:db8::1", ["198.51.100.1"], "2001:db8::1"),
    ],
)
def test_the_client_address(peer: str, forwarded: list[str], expected: str) -> None:
    assert client_address(request(peer, *forwarded), EDGE) == expected


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert client_address(request("127.0.0.1", "198.51.100.1"), []) == "127.0.0.1"
    assert client_address(request(None), EDGE) == ""


def test_trusted_proxies_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SINERGI_TRUSTED_PROXIES", "172.28.0.0/16, 10.0.0.1")
    assert PlatformSettings().trusted_proxies == [ip_network("172.28.0.0/16"), ip_network("10.0.0.1/32")]
    monkeypatch.setenv("SINERGI_TRUSTED_PROXIES", "")
    assert PlatformSettings().trusted_proxies == []
    monkeypatch.delenv("SINERGI_TRUSTED_PROXIES")
    # Default: only a proxy on this host.
    assert PlatformSettings().trusted_proxies == [ip_network("127.0.0.1/32"), ip_network("::1/128")]


def test_a_deployment_overrides_a_rule_by_name_and_scales_them_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "SINERGI_RATE_LIMITS", '{"health.bookings_per_address": {"count": 2, "per_seconds": 60}}'
    )
    monkeypatch.setenv("SINERGI_RATE_LIMIT_FACTOR", "1")
    platform = PlatformSettings()
    assert platform.rate_limits == {"health.bookings_per_address": Rate(count=2, per_seconds=60)}
    rule = Limit("health.bookings_per_address", 20, 3600)
    assert configured(rule, platform) == Limit("health.bookings_per_address", 2, 60)
    other = Limit("complaints.filing", 30, 3600)
    assert configured(other, platform) == other
    tripled = platform.model_copy(update={"rate_limit_factor": 3.0})
    assert configured(other, tripled) == Limit("complaints.filing", 90, 3600)
    # Never below one request.
    assert configured(other, platform.model_copy(update={"rate_limit_factor": 0.001})).count == 1


def test_a_rule_needs_a_count_and_a_period() -> None:
    with pytest.raises(ValueError):
        Limit("x", 0, 60)
    with pytest.raises(ValueError):
        Limit("x", 1, 0)


def test_keys_are_keyed_hashes_never_the_value() -> None:
    platform = PlatformSettings()
    other_deployment = PlatformSettings(citizen_ref_key="another-deployment-key-0123456789abcdef")
    for value in ("198.51.100.1", "3306061708900001", "+6281234567890", "warga@example.com"):
        key = limit_key(platform, value)
        assert len(key) == 32 and value not in key
        assert key == limit_key(platform, value)
        assert key != limit_key(other_deployment, value)
    assert limit_key(platform, "198.51.100.1") != limit_key(platform, "198.51.100.2")


async def test_take_refuses_a_raw_value_as_key() -> None:
    class NoDatabase:
        async def fetchrow(self, *_: object) -> None:
            raise AssertionError("must not reach the database")

    with pytest.raises(ValueError, match="limit_key"):
        await take(NoDatabase(), Limit("x", 1, 60), "+6281234567890")  # type: ignore[arg-type]
