"""Production mode refuses development keys and shared-secret officer tokens."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from services.complaints.app import ComplaintsSettings, build
from services.integration.app import IntegrationSettings
from services.integration.app import build as build_integration
from services.notifications.app import NotificationsSettings, development_keys
from services.portal.app import PortalSettings
from services.portal.app import build as build_portal
from shared.kit.auth import DevelopmentTokens, OidcTokens, token_verifier
from shared.kit.settings import PlatformSettings, bootstrap_servers, require_production_keys

REAL_KEYS = {
    "citizen_ref_key": SecretStr("b" * 40),
    "oidc_issuer": "https://sso.purworejokab.go.id/realms/sinergi",
}


def test_development_mode_accepts_development_keys_and_tokens() -> None:
    settings = PlatformSettings(environment="development")
    require_production_keys(settings)
    assert isinstance(token_verifier(settings), DevelopmentTokens)


def test_production_refuses_development_keys() -> None:
    with pytest.raises(RuntimeError, match=r"SINERGI_CITIZEN_REF_KEY"):
        require_production_keys(
            PlatformSettings(environment="production", oidc_issuer=REAL_KEYS["oidc_issuer"])
        )


def test_production_refuses_to_start_without_an_identity_provider() -> None:
    settings = PlatformSettings(environment="production", **{**REAL_KEYS, "oidc_issuer": None})
    with pytest.raises(RuntimeError, match="SINERGI_OIDC_ISSUER"):
        require_production_keys(settings)
    with pytest.raises(RuntimeError, match="SINERGI_OIDC_ISSUER"):
        token_verifier(settings)


def test_production_accepts_real_keys_and_trusts_only_the_provider() -> None:
    settings = PlatformSettings(environment="production", **REAL_KEYS)
    require_production_keys(settings)
    assert isinstance(token_verifier(settings), OidcTokens)


def test_production_refuses_a_short_key() -> None:
    with pytest.raises(RuntimeError, match="shorter than 32"):
        require_production_keys(
            PlatformSettings(environment="production", **{**REAL_KEYS, "citizen_ref_key": SecretStr("short")})
        )


def test_a_cluster_bootstrap_names_every_broker() -> None:
    # The compose cluster profile's SINERGI_KAFKA_BOOTSTRAP; FastStream needs the list.
    assert bootstrap_servers("kafka:9092, kafka-2:9092,kafka-3:9092,") == [
        "kafka:9092",
        "kafka-2:9092",
        "kafka-3:9092",
    ]
    assert bootstrap_servers("127.0.0.1:9092") == ["127.0.0.1:9092"]


def test_production_refuses_the_development_keys_that_open_contacts() -> None:
    production = PlatformSettings(environment="production", **REAL_KEYS)
    with pytest.raises(RuntimeError, match="COMPLAINTS_MASTER_KEY"):
        build(ComplaintsSettings(platform=production))
    with pytest.raises(
        RuntimeError, match=r"NOTIFICATIONS_CONTACT_KEY.*NOTIFICATIONS_KEY_READER_CLIENT_SECRET"
    ):
        require_production_keys(production, development_keys(NotificationsSettings(platform=production)))
    real = {
        "contact_key": "Zm9vYmFyYmF6cXV4MDEyMzQ1Njc4OWFiY2RlZmdoaWo=",
        "key_reader_client_secret": "s" * 40,
    }
    require_production_keys(production, development_keys(NotificationsSettings(platform=production, **real)))


def test_production_refuses_the_development_secrets_of_the_view_and_the_portal() -> None:
    production = PlatformSettings(environment="production", **REAL_KEYS)
    with pytest.raises(RuntimeError, match="INTEGRATION_TEXT_READER_CLIENT_SECRET"):
        build_integration(IntegrationSettings(platform=production))
    with pytest.raises(RuntimeError, match=r"PORTAL_SECRET_KEY.*PORTAL_OIDC_CLIENT_SECRET"):
        build_portal(PortalSettings(platform=production))
    with pytest.raises(RuntimeError, match=r"refusing.*: PORTAL_OIDC_CLIENT_SECRET$"):
        build_portal(PortalSettings(platform=production, secret_key=SecretStr("p" * 40)))
