"""Per-citizen data keys: crypto-shredding of what stays on the log (UU PDP 27/2022).

Domain topics keep every event (rebuilds), dead-letter topics copy events for 30 days and
the outbox keeps them for 72 hours, so an erasure cannot rewrite every copy. Instead what
an event says about a citizen that must stay secret (their contact) is encrypted with a
data key of that citizen alone (Fernet, 32 random bytes), kept by the owning service
in `citizen_keys`, wrapped under the service's master key (`<SERVICE>_MASTER_KEY`). The
event carries only the random `key_id` and the ciphertext. Erasure deletes the key: every
copy becomes unreadable, wherever it lies.

The key never travels on the bus (a wrapped key there would outlive the erasure): the
notification service asks the producer for it (`GET /internal/data-keys/{key_id}`, role
``key_reader``) while it exists, and keeps it in memory for minutes at most
(`DataKeyClient`); after the erasure the producer answers 404 and the message has no
contact.

What a citizen wrote is sealed with the text key derived from the same data key
(`privacy.text_key`), which the producer gives to readers of text only
(`GET /internal/text-keys/{key_id}`, role ``text_reader``: the integration view), through
the same client; a text key opens no contact, and the erasure's one deletion shreds both.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, cast

import asyncpg
import httpx
from cryptography.fernet import Fernet
from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, SecretStr

from shared.kit.auth import Officer, issue_token, require_role
from shared.kit.errors import NotFound
from shared.kit.privacy import PendingSeal, text_key
from shared.kit.settings import PlatformSettings
from shared.schemas import EventData
from shared.schemas.common import DATA_KEY_ID_PATTERN, SealedContact

# A valid Fernet key, for development only (production refuses it).
DEV_MASTER_KEY = "c2luZXJnaS1kZXZlbG9wbWVudC1tYXN0ZXIta2V5ISE="
KEY_READER = "key_reader"  # the machine role of the notification service
TEXT_READER = "text_reader"  # the machine role of the integration view
DATA_KEYS_PATH = "/internal/data-keys"  # contact keys, for KEY_READER
TEXT_KEYS_PATH = "/internal/text-keys"  # text keys, for TEXT_READER
# How long a consumer (the notification service, the integration view) keeps a key: an erasure reaches every
# message it composes after this, at the latest.
CACHE_SECONDS = 300.0


def require_production_master_key(settings: object) -> None:
    """In production, refuse the development master key: anyone could unwrap the data
    keys with a published one."""
    master = getattr(settings, "master_key", None)
    platform = getattr(settings, "platform", None)
    if master is None or getattr(platform, "environment", None) != "production":
        return
    if master.get_secret_value() == DEV_MASTER_KEY:
        prefix = str(getattr(settings, "model_config", {}).get("env_prefix", ""))
        raise RuntimeError(f"refusing to start in production with the development {prefix}MASTER_KEY")


def producer_of(source: str) -> str:
    """The service whose data key sealed an event's values: its CloudEvents source is
    /sinergi/<service>/<region>."""
    return source.strip("/").split("/")[1]


def new_key_id() -> str:
    return "dk1_" + secrets.token_hex(16)


@dataclass(frozen=True)
class DataKeys:
    """A producing service's data keys, wrapped under its master key."""

    master_key: SecretStr

    def _master(self) -> Fernet:
        return Fernet(self.master_key.get_secret_value().encode())

    async def key_for(self, conn: asyncpg.Connection, subject: str) -> tuple[str, str]:
        """The subject's (key id, data key), made on first use, read or made in one
        statement (a fresh key is wrapped each time: microseconds, against a round trip).
        Two transactions making the same subject's key at once: the second waits for the
        first, and reads its key in a statement of its own (its first one's snapshot
        predates that key)."""
        row = await conn.fetchrow(
            "WITH made AS (INSERT INTO citizen_keys (subject, key_id, wrapped_key) VALUES ($1, $2, $3)"
            " ON CONFLICT (subject) DO NOTHING RETURNING key_id, wrapped_key)"
            " SELECT key_id, wrapped_key FROM made"
            " UNION ALL SELECT key_id, wrapped_key FROM citizen_keys WHERE subject = $1 LIMIT 1",
            subject,
            new_key_id(),
            self._master().encrypt(Fernet.generate_key()),
        )
        if row is None:
            row = await _wrapped_key_of(conn, subject)
        return row["key_id"], self._master().decrypt(bytes(row["wrapped_key"])).decode()

    async def key(self, conn: asyncpg.Connection, key_id: str) -> str | None:
        """The data key of `key_id`, None once erased (or never made)."""
        wrapped = await conn.fetchval("SELECT wrapped_key FROM citizen_keys WHERE key_id = $1", key_id)
        return None if wrapped is None else self._master().decrypt(bytes(wrapped)).decode()


async def _wrapped_key_of(conn: asyncpg.Connection, subject: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT key_id, wrapped_key FROM citizen_keys WHERE subject = $1", subject)


async def destroy(conn: asyncpg.Connection, subjects: Iterable[str]) -> int:
    """Delete the subjects' data keys (an erasure); how many keys there were."""
    status = await conn.execute("DELETE FROM citizen_keys WHERE subject = ANY($1::text[])", list(subjects))
    return int(status.split()[-1])


async def seal_pending(
    conn: asyncpg.Connection, keys: DataKeys | None, events: Iterable[EventData]
) -> list[EventData]:
    """`events` with every value still to seal (a contact `ToSeal`, a text `ToSealText`)
    sealed with its citizen's data key. A service without data keys cannot put either on
    the bus."""
    sealed: list[EventData] = []
    keys_of: dict[str, tuple[str, str]] = {}  # one round trip per citizen, not per event
    for data in events:
        update = {
            name: await _sealed(conn, keys, value, keys_of)
            for name, value in data
            if isinstance(value, PendingSeal)
        }
        sealed.append(data.model_copy(update=update) if update else data)
    return sealed


async def seal_now(
    conn: asyncpg.Connection, keys: DataKeys | None, contact: SealedContact | None
) -> SealedContact | None:
    """`contact` sealed now, if still to seal: for a use case that stages its events while
    holding a contended lock, so the data key's read is not one more round trip under it."""
    if not isinstance(contact, PendingSeal):
        return contact
    return cast(SealedContact, await _sealed(conn, keys, contact, {}))


async def _sealed(
    conn: asyncpg.Connection, keys: DataKeys | None, value: PendingSeal, keys_of: dict[str, tuple[str, str]]
) -> BaseModel:
    if keys is None:
        raise RuntimeError("this service has no data keys to seal a citizen's data with")
    subject, _ = value.to_seal
    if subject not in keys_of:
        keys_of[subject] = await keys.key_for(conn, subject)
    return value.sealed_with(*keys_of[subject])


# ----- the producer's endpoint ---------------------------------------------------------------


class DataKeyOut(BaseModel):
    key_id: str
    key: str


router = APIRouter(tags=["personal data"])
KeyId = Annotated[str, Path(pattern=DATA_KEY_ID_PATTERN)]
KeyReader = Annotated[Officer, Depends(require_role(KEY_READER))]
TextReader = Annotated[Officer, Depends(require_role(TEXT_READER))]


@router.get(
    DATA_KEYS_PATH + "/{key_id}",
    summary="A citizen's data key, while it exists (notification service)",
)
async def data_key(request: Request, key_id: KeyId, _: KeyReader) -> DataKeyOut:
    return DataKeyOut(key_id=key_id, key=await _data_key(request, key_id))


@router.get(
    TEXT_KEYS_PATH + "/{key_id}",
    summary="The text key of a citizen's data key, while it exists (integration view)",
)
async def text_key_of(request: Request, key_id: KeyId, _: TextReader) -> DataKeyOut:
    return DataKeyOut(key_id=key_id, key=text_key(await _data_key(request, key_id)))


async def _data_key(request: Request, key_id: str) -> str:
    service = request.app.state.service
    async with service.pool.acquire() as conn:
        key = await service.data_keys.key(conn, key_id)
    if key is None:  # erased, or never made: the same answer
        raise NotFound("no such data key")
    return key


# ----- the consumer's client -----------------------------------------------------------------


class KeyServiceUnavailable(Exception):
    """A producer could not be asked for a key (not a refusal): the batch is tried again."""


class KeyReaderToken:
    """The bearer token a consumer asks producers for keys with: from the identity provider
    (OAuth 2.0 client credentials of its service account, which has the machine role
    `role`: ``key_reader`` for the notification service, ``text_reader`` for the
    integration view) or, in development without a provider, a short HS256 token."""

    def __init__(
        self,
        platform: PlatformSettings,
        client_id: str,
        client_secret: SecretStr,
        role: str = KEY_READER,
        *,
        client: httpx.AsyncClient | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.platform, self.client_id, self.client_secret = platform, client_id, client_secret
        self.role = role
        self.monotonic = monotonic
        self._token: tuple[str, float] | None = None
        self._client = client
        # The provider's token endpoint, from its discovery document: read once, and again
        # only after a failed request (the provider may have moved it).
        self._token_endpoint: str | None = None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def __call__(self) -> str:
        now = self.monotonic()
        if self._token is not None and self._token[1] > now:
            return self._token[0]
        if not self.platform.oidc_issuer:
            token = issue_token(
                self.platform.auth_secret.get_secret_value(), subject=self.client_id, role=self.role, hours=1
            )
            self._token = (token, now + 1800)
            return token
        client = self._client = self._client or httpx.AsyncClient(timeout=10.0)
        try:
            if self._token_endpoint is None:
                base = (self.platform.oidc_discovery_url or self.platform.oidc_issuer).rstrip("/")
                discovery = await client.get(f"{base}/.well-known/openid-configuration")
                discovery.raise_for_status()
                self._token_endpoint = str(discovery.json()["token_endpoint"])
            answer = await client.post(
                self._token_endpoint,
                data={"grant_type": "client_credentials"},
                auth=(self.client_id, self.client_secret.get_secret_value()),
            )
            answer.raise_for_status()
            body = answer.json()
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            self._token_endpoint = None
            raise KeyServiceUnavailable(f"identity provider: {type(exc).__name__}") from None
        # Renewed at half its life, so a token never expires on its way.
        self._token = (str(body["access_token"]), now + float(body.get("expires_in", 60)) / 2)
        return self._token[0]


@dataclass
class DataKeyClient:
    """Asks producers for keys (`urls`: service name → base URL) at `path` (data keys, or
    text keys) with a bearer token of the role that path wants (`token`), and keeps what
    it got for `ttl` seconds."""

    urls: Mapping[str, str]
    token: KeyReaderToken
    path: str = DATA_KEYS_PATH
    ttl: float = CACHE_SECONDS
    timeout: float = 5.0
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    monotonic: Callable[[], float] = time.monotonic
    _cache: dict[str, tuple[str, float]] = field(default_factory=dict, repr=False)
    _made: list[httpx.AsyncClient] = field(default_factory=list, repr=False)  # closed by `close`

    def client(self, service: str) -> httpx.AsyncClient:
        if service not in self.clients:
            if service not in self.urls:
                raise KeyServiceUnavailable(f"no address for the data keys of '{service}'")
            self.clients[service] = httpx.AsyncClient(base_url=self.urls[service], timeout=self.timeout)
            self._made.append(self.clients[service])
        return self.clients[service]

    async def keys(self, wanted: Sequence[tuple[str, str]]) -> dict[str, str | None]:
        """The keys of (service, key id) pairs: key id → data key, None once erased."""
        now = self.monotonic()
        found: dict[str, str | None] = {}
        for service, key_id in wanted:
            cached = self._cache.get(key_id)
            if cached is not None and cached[1] > now:
                found[key_id] = cached[0]
            elif key_id not in found:
                found[key_id] = await self._fetch(service, key_id)
                if found[key_id] is not None:
                    self._cache[key_id] = (found[key_id], now + self.ttl)  # type: ignore[assignment]
        for expired in [k for k, (_, until) in self._cache.items() if until <= now]:
            del self._cache[expired]
        return found

    async def _fetch(self, service: str, key_id: str) -> str | None:
        client = self.client(service)
        token = await self.token()
        try:
            response = await client.get(f"{self.path}/{key_id}", headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            raise KeyServiceUnavailable(f"{service}: {type(exc).__name__}") from None
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise KeyServiceUnavailable(f"{service} answered {response.status_code}")
        body: dict[str, Any] = response.json()
        return str(body["key"])

    def forget(self) -> None:
        """Drop every key kept: an erasure was announced (rare; which keys were the
        citizen's is not known here, so all go and are asked for again as needed)."""
        self._cache.clear()

    async def close(self) -> None:
        for client in self._made:
            await client.aclose()
        self._made.clear()
        self.clients.clear()
        await self.token.close()
