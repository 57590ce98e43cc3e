"""Settings every service reads from its environment.

Shared settings use the ``SINERGI_`` prefix (one broker, one set of keys per deployment);
each service adds its own with its own prefix (``COMPLAINTS_DATABASE_URL``, ...), so one
`.env` file can configure the whole system without names colliding.
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Development defaults. `make run` and the tests pass their own; the docker-compose
# deployment requires real values through its `.env` file.
DEV_AUTH_SECRET = "sinergi-development-secret-change-me-0123456789"
DEV_CITIZEN_REF_KEY = "sinergi-development-citizen-ref-key"
# The secrets of the development realm's clients (`make idp`, shared/runtime/keycloak.py
# puts them in the realm): the portal's officers' sign-in, the notification service's
# account (role key_reader), the integration view's (role text_reader).
DEV_OIDC_CLIENT_SECRET = "sinergi-petugas-development-secret"
DEV_KEY_READER_SECRET = "sinergi-notifications-development-secret"
DEV_TEXT_READER_SECRET = "sinergi-integration-development-secret"


class Rate(BaseModel):
    """At most `count` requests per `per_seconds` (spread evenly once the burst is spent)."""

    count: int = Field(ge=1)
    per_seconds: float = Field(gt=0)


class PlatformSettings(BaseSettings):
    """What every Sinergi process shares: broker, keys, region."""

    model_config = SettingsConfigDict(env_prefix="SINERGI_", extra="ignore", populate_by_name=True)

    # One broker or several, comma-separated (the compose cluster profile names three).
    kafka_bootstrap: str = "127.0.0.1:9092"
    # Apache Kafka supports the idempotent producer; Tansu (the embedded broker) does not.
    kafka_idempotence: bool = False
    kafka_partitions: int = 3
    # "production" refuses to start with any development key (see `require_production_keys`).
    environment: Literal["development", "production"] = "development"
    region: str = Field("33.06", description="Kemendagri code of the regency")
    region_name: str = "Kabupaten Purworejo"
    # Officers' identity provider (OpenID Connect). Without an issuer, development only:
    # HS256 tokens signed with `auth_secret` (`make token`).
    oidc_issuer: str | None = Field(None, description="e.g. https://sso.purworejokab.go.id/realms/sinergi")
    # Where the services reach the provider when its public address is not reachable from
    # their network (compose: http://keycloak:8080/auth/realms/sinergi). Tokens must still
    # name the public issuer.
    oidc_discovery_url: str | None = None
    oidc_audience: str = "sinergi"
    # Where the claims are: the first roles path present wins (a plain provider's `roles`,
    # Keycloak's `realm_access.roles`).
    oidc_roles_claims: list[str] = Field(default_factory=lambda: ["roles", "realm_access.roles"])
    oidc_opd_claim: str = "opd"
    oidc_facility_claim: str = "facility"
    oidc_leeway_seconds: float = Field(60.0, ge=0, le=300, description="Clock skew allowed on exp/nbf/iat")
    oidc_jwks_refresh_seconds: float = Field(30.0, ge=1, description="At most one key refetch this often")
    # Citizens' sessions (shared/kit/citizen.py): issued by the notification service after a
    # one-time code, verified by every service with the keys it publishes. The issuer is
    # that service's public URL; the discovery URL where the services reach it, if not there.
    citizen_issuer: str = Field("http://127.0.0.1:8004", description="Public URL of the notification service")
    citizen_discovery_url: str | None = None
    auth_secret: SecretStr = SecretStr(DEV_AUTH_SECRET)
    citizen_ref_key: SecretStr = SecretStr(DEV_CITIZEN_REF_KEY)
    log_level: str = "INFO"
    # Tracing (shared/kit/tracing.py): off without an OTLP/HTTP endpoint (e.g.
    # http://jaeger:4318); the standard OpenTelemetry variable is read too. Sampling is
    # parent-based: a trace begun upstream keeps its decision; a new one is kept at this ratio.
    otlp_endpoint: str | None = Field(
        None, validation_alias=AliasChoices("SINERGI_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    trace_sample_ratio: float = Field(1.0, ge=0, le=1)
    # Outbox relay tuning.
    outbox_batch_size: int = 1000
    outbox_poll_seconds: float = 2.0
    outbox_retention_hours: float = 72.0
    # Consumer retries before a message goes to the dead-letter topic.
    consumer_max_attempts: int = 3
    consumer_backoff_seconds: float = 0.2
    # Group membership timing. Shorter values rebalance faster after an instance stops
    # (the embedded broker waits out the old member's session before re-joining).
    consumer_session_timeout_ms: int = 10_000
    consumer_heartbeat_ms: int = 3_000
    # How long the broker may hold a fetch that has no data yet. The embedded broker
    # holds it that long even when data arrives meanwhile, so a record waits half of it
    # on average (500 ms, the client default, put ~150 ms on every hop; 50 ms, ~30 ms);
    # Apache Kafka answers as soon as data arrives. An idle consumer fetches 1000/this
    # times a second.
    consumer_fetch_max_wait_ms: int = 20
    # A consumer whose partitions hold records it has not consumed, and which got no
    # batch for this long, is declared stalled and restarted (shared/kit/watchdog.py).
    # Longer than a rebalance (Tansu's takes about a session timeout plus the join).
    consumer_stall_seconds: float = Field(30.0, gt=0)
    max_request_bytes: int = 64 * 1024
    # Admission control (shared/kit/admission.py), per process: a newcomer is answered
    # 503 with Retry-After when the oldest request in flight is older than the budget
    # (the service is behind: the newcomer would wait at least that long) or when
    # max_in_flight are in flight (memory); min_in_flight are always taken (a saturated
    # machine, where every request is slower than the budget, must still keep the pool's
    # connections and its core busy). The budget is half the accepted requests' p99
    # target under overload (docs/capacity.md), leaving the other half for the
    # request's own work. Behind is refused only once it has lasted the interval (a
    # stall is not an overload), CoDel's 100 ms.
    max_in_flight: int = Field(default=32, ge=1)
    min_in_flight: int = Field(default=8, ge=1)
    admission_budget_seconds: float = Field(default=0.05, gt=0)
    admission_interval_seconds: float = Field(default=0.1, ge=0)
    busy_retry_after_seconds: int = Field(default=1, ge=1)
    # Where services keep attachments' bytes (shared/kit/attachments.py), one folder per
    # service below it; relative to the working directory (`make run`: the repository).
    attachments_dir: Path = Path(".run/attachments")
    # Or, the production option for more than one host: an S3-compatible object store
    # (MinIO, Ceph, a cloud's object storage) at `attachments_s3_endpoint` (https://host,
    # or http:// on a private network), one prefix per service in the bucket (which the
    # operator creates), with an access key pair of that bucket only.
    attachments_s3_endpoint: str | None = None
    attachments_s3_bucket: str = "sinergi-attachments"
    attachments_s3_region: str = "us-east-1"
    attachments_s3_access_key_id: str | None = None
    attachments_s3_secret_access_key: SecretStr | None = None
    # Abuse limits of anonymous writes (shared/kit/limits.py; the rules and their numbers
    # in docs/operations.md). `rate_limits` replaces a rule's numbers by its name, e.g.
    # SINERGI_RATE_LIMITS='{"health.bookings_per_address": {"count": 60, "per_seconds": 3600}}';
    # `rate_limit_factor` multiplies every rule's count (a registration drive; the tests,
    # which are not about limits, raise them all).
    rate_limits: dict[str, Rate] = Field(default_factory=dict)
    rate_limit_factor: float = Field(1.0, gt=0)
    # Peers whose X-Forwarded-For names the client (comma-separated addresses or
    # networks): the edge proxy. Anyone else is the client themself, whatever they send.
    trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=lambda: [ip_network("127.0.0.1/32"), ip_network("::1/128")]
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        if isinstance(value, str):
            return [ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip()]
        return value


class ServiceSettings(BaseSettings):
    """One service's own settings plus the platform's. A service's settings class derives
    from the kit's `service_settings(name)` (shared/kit/app.py), which names the service
    and sets its environment prefix, port and database."""

    model_config = SettingsConfigDict(extra="ignore")
    # The service these settings configure, as shared/runtime/topology.py names it.
    service: ClassVar[str | None] = None

    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    host: str = "127.0.0.1"
    port: int = 8000
    # The path the edge serves this service under on the regency's one host name
    # (deploy/nginx/edge.conf: "/api/complaints", "/dasbor"), "" when served at the root.
    # The edge strips it; the service puts it back in the links it writes and its API docs.
    root_path: str = Field(default="", pattern=r"^(/[A-Za-z0-9._~-]+)*$")
    db_pool_min: int = 1
    db_pool_max: int = 10
    # A service that keeps attachments deletes the bytes of erased ones this often.
    attachment_purge_seconds: float = 60.0
    platform: PlatformSettings = Field(default_factory=PlatformSettings)


def bootstrap_servers(bootstrap: str) -> list[str]:
    """`host:port,host:port` as a list: FastStream takes a string as ONE address (aiokafka
    itself splits it), so a cluster's bootstrap must reach it as a list."""
    return [server.strip() for server in bootstrap.split(",") if server.strip()]


def require_production_keys(
    settings: PlatformSettings, service_keys: Mapping[str, tuple[SecretStr, str]] | None = None
) -> None:
    """In production, refuse the development secrets and shared-secret officer tokens: a
    token signed with a published key would let anyone act as an officer, and a known
    HMAC key would let anyone link citizen references back to NIKs. `service_keys`: a
    service's own, by variable name, each with its published development value."""
    if settings.environment != "production":
        return
    # Officers sign in through the identity provider; the shared secret (SINERGI_AUTH_SECRET)
    # signs nothing there, so only the citizen reference key is checked of the platform's.
    defaults = {
        "SINERGI_CITIZEN_REF_KEY": (settings.citizen_ref_key, DEV_CITIZEN_REF_KEY),
        **(service_keys or {}),
    }
    weak = [name for name, (value, dev) in defaults.items() if value.get_secret_value() == dev]
    if len(settings.citizen_ref_key.get_secret_value()) < 32:
        weak.append("SINERGI_CITIZEN_REF_KEY (shorter than 32 characters)")
    if not settings.oidc_issuer:
        weak.append("SINERGI_OIDC_ISSUER (officers' identity provider) is not set")
    if weak:
        raise RuntimeError(
            "refusing to start in production with development or weak keys: " + ", ".join(weak)
        )
