"""Production mode refuses development keys."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from shared.kit.settings import PlatformSettings, require_production_keys


def test_development_mode_accepts_development_keys() -> None:
    require_production_keys(PlatformSettings(environment="development"))


def test_production_refuses_development_keys() -> None:
    with pytest.raises(RuntimeError, match="SINERGI_AUTH_SECRET"):
        require_production_keys(PlatformSettings(environment="production"))


def test_production_accepts_real_keys() -> None:
    require_production_keys(
        PlatformSettings(
            environment="production",
            auth_secret=SecretStr("a" * 48),
            citizen_ref_key=SecretStr("b" * 40),
            contact_key=SecretStr("Zm9vYmFyYmF6cXV4MDEyMzQ1Njc4OWFiY2RlZmdoaWo="),
        )
    )


def test_production_refuses_a_short_secret() -> None:
    with pytest.raises(RuntimeError, match="shorter than 32"):
        require_production_keys(
            PlatformSettings(
                environment="production",
                auth_secret=SecretStr("short"),
                citizen_ref_key=SecretStr("b" * 40),
                contact_key=SecretStr("Zm9vYmFyYmF6cXV4MDEyMzQ1Njc4OWFiY2RlZmdoaWo="),
            )
        )
