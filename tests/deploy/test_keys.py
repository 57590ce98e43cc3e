"""Keys only where needed: each service of the compose deployment is given exactly the keys
its settings read, and only the services whose work needs a key that can open a
citizen's contact hold one (docs/architecture.md, "Keys and crypto-shredding").

A key is an environment variable of a secret setting (a `SecretStr` field of the
service's settings class or of the platform's) or any variable named like one; a service
*uses* its own secret settings and the platform secrets listed in `PLATFORM_KEYS_USED`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from services.integration.app import TEXT_KEY_HOLDERS, IntegrationSettings
from services.integration.app import build as build_integration
from services.notifications.app import KEY_HOLDERS, NotificationsSettings
from shared.kit.data_keys import TEXT_KEYS_PATH, TEXT_READER
from shared.kit.settings import PlatformSettings
from shared.runtime.topology import SERVICES, ServiceInfo
from tests.deploy.helpers import (
    COMPOSE,
    effective_settings_class,
    env_names,
    environment,
    merged_compose,
    platform_env_names,
    secret_fields,
)

KEYLIKE = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$")
# The platform's secrets each service reads in production, and why:
# - SINERGI_CITIZEN_REF_KEY: every service computes keyed hashes with it (the domain
#   services: citizen and contact references; the notification service: contact
#   references of sessions and preferences; the integration view: the officer timeline's
#   NIK lookup; every service with anonymous writes, the portal included: the abuse
#   limits' keys, shared/kit/limits.py).
# - SINERGI_AUTH_SECRET signs development tokens only: no service is given it.
# - SINERGI_ATTACHMENTS_S3_SECRET_ACCESS_KEY: the services that keep attachments (complaint
#   photos, permit documents), when they keep them in an S3-compatible bucket.
ATTACHMENT_KEEPERS = {"complaints", "permits"}
PLATFORM_KEYS_USED = {
    service.name: {"SINERGI_CITIZEN_REF_KEY"}
    | ({"SINERGI_ATTACHMENTS_S3_SECRET_ACCESS_KEY"} if service.name in ATTACHMENT_KEEPERS else set())
    for service in SERVICES
}
# Settings whose key opens a citizen's contact: a producer's master key (its data keys)
# and the notification service's own contact key.
OPENS_CONTACTS = {"master_key", "contact_key"}
BY_NAME = {s.name: s for s in SERVICES}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return merged_compose(COMPOSE)


def own_secrets(info: ServiceInfo) -> dict[str, str]:
    """The service's own secret settings: environment variable -> field."""
    settings = effective_settings_class(info)
    secrets = secret_fields(settings) - secret_fields(PlatformSettings)
    return {var: field for var, field in env_names(settings).items() if field in secrets}


def keys_given(compose: dict[str, Any], info: ServiceInfo) -> set[str]:
    platform_secrets = {
        var for var, field in platform_env_names().items() if field in secret_fields(PlatformSettings)
    }
    env = environment(compose["services"][info.name])
    return {var for var in env if var in platform_secrets or var in own_secrets(info) or KEYLIKE.search(var)}


@pytest.mark.parametrize("name", [s.name for s in SERVICES])
def test_each_service_is_given_exactly_the_keys_it_uses(compose: dict[str, Any], name: str) -> None:
    info = BY_NAME[name]
    used = set(own_secrets(info)) | PLATFORM_KEYS_USED[name]
    given = keys_given(compose, info)
    assert not given - used, f"{name} is given keys it does not use: {sorted(given - used)}"
    assert not used - given, f"{name} lacks keys it uses: {sorted(used - given)}"


def test_only_the_services_that_need_one_hold_a_key_that_opens_a_contact() -> None:
    holders = {
        info.name: sorted(set(own_secrets(info).values()) & OPENS_CONTACTS)
        for info in SERVICES
        if set(own_secrets(info).values()) & OPENS_CONTACTS
    }
    assert holders == {
        **{name: ["master_key"] for name in KEY_HOLDERS},
        "notifications": ["contact_key"],
    }
    # The integration view and the portal: no key that opens anything of a citizen's.
    assert "integration" not in holders and "portal" not in holders


def test_the_notification_service_asks_every_key_holder_and_no_one_else(compose: dict[str, Any]) -> None:
    env = environment(compose["services"]["notifications"])
    urls = json.loads(env["NOTIFICATIONS_DATA_KEY_URLS"] or "{}")
    assert urls == {name: f"http://{name}:{BY_NAME[name].port}" for name in KEY_HOLDERS}
    # Development (`make run`): the same services, on this host's ports.
    assert set(NotificationsSettings().data_key_urls) == set(KEY_HOLDERS)


def test_the_integration_view_asks_for_text_keys_only_and_of_every_text_key_holder(
    compose: dict[str, Any],
) -> None:
    """The view reads what citizens wrote with text keys (they open no contact), as the
    machine role text_reader; it holds no master, contact or data key of its own."""
    env = environment(compose["services"]["integration"])
    urls = json.loads(env["INTEGRATION_TEXT_KEY_URLS"] or "{}")
    assert urls == {name: f"http://{name}:{BY_NAME[name].port}" for name in TEXT_KEY_HOLDERS}
    assert set(IntegrationSettings().text_key_urls) == set(TEXT_KEY_HOLDERS)
    assert not set(own_secrets(BY_NAME["integration"]).values()) & OPENS_CONTACTS
    assert not any("DATA_KEY" in var or "KEY_READER" in var for var in env)
    # Its key client as its app builds it (no server started): text keys, as text_reader.
    client = build_integration(IntegrationSettings()).state.service.context.text_keys
    assert client is not None and client.path == TEXT_KEYS_PATH and client.token.role == TEXT_READER


def test_no_service_is_given_the_former_shared_contact_key(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert "SINERGI_CONTACT_KEY" not in environment(service), name
    assert "contact_key" not in PlatformSettings.model_fields
