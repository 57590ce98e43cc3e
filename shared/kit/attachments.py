"""Attachments: the photos a citizen adds to a complaint, the documents of a permit
application. Each belongs to the service that owns its case; this module is the one way
every service takes, keeps, serves and erases them.

- **What is accepted is decided by the content, not the name.** Pillow must open a photo
  as JPEG or PNG; a document is one of those or a PDF that pypdf can read page by page.
  A PDF named ``.jpg`` is refused as a photo, a program named ``.pdf`` as a document.
- **Photos and images are re-encoded** before they are kept: the EXIF block (the phone's
  GPS position, its serial number, the time) and every other metadata chunk is left
  behind; the orientation it carried is applied to the pixels first.
- **Size caps** (`MAX_BYTES`) are checked before anything is parsed; the HTTP edge lets a
  multipart body through up to `MAX_UPLOAD_REQUEST_BYTES` so that the cap, not the edge,
  answers, with a message on the field.
- **Metadata in the service's database** (kit migration 006 ``attachment``): id, kind,
  media type, size, SHA-256, the case it belongs to. **Bytes in a store**: the local
  filesystem (`FileStore`, under ``.run/`` for ``make run``), named by the attachment's
  id only. Events carry ids and hashes, never bytes or names.
- **Two steps.** An upload is *staged* (no case yet: the citizen is still filling in the
  form) and *claimed* by the case in the unit of work that creates it; staged uploads
  nobody claimed are deleted after `STAGED_TTL`. Erasing a case's attachments marks the
  rows in that unit of work and deletes the bytes after it commits (`purge`), so a
  rolled-back erasure loses nothing and a failed delete is retried by the next purge.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import asyncpg
from fastapi import APIRouter, Response
from minio import Minio
from minio.error import S3Error
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import BaseModel, Field
from pypdf import PdfReader
from pypdf.errors import PdfReadError

from shared.kit.errors import InvalidField, InvalidFields, NotFound
from shared.kit.limits import Limit, limited
from shared.schemas.common import AttachmentRef

if TYPE_CHECKING:
    from shared.kit.settings import PlatformSettings

Location = tuple[str | int, ...]  # where in the request body a value is, as 422s name it

MB = 1024 * 1024


class AttachmentKind(StrEnum):
    PHOTO = "photo"  # a picture of the place a complaint is about, or of the work done
    DOCUMENT = "document"  # a permit requirement: KTP scan, site plan, statement letter


class MediaType(StrEnum):
    JPEG = "image/jpeg"
    PNG = "image/png"
    PDF = "application/pdf"


MAX_BYTES = {AttachmentKind.PHOTO: 5 * MB, AttachmentKind.DOCUMENT: 10 * MB}
ACCEPTED = {
    AttachmentKind.PHOTO: (MediaType.JPEG, MediaType.PNG),
    AttachmentKind.DOCUMENT: (MediaType.JPEG, MediaType.PNG, MediaType.PDF),
}
# One file per request. The edge lets through well above the largest cap, so that a file
# somewhat over it (an 11 MB scan) is answered by the cap, with a message on the field.
MAX_UPLOAD_REQUEST_BYTES = 16 * MB
# A staged upload the citizen never submitted is deleted after this long.
STAGED_TTL = timedelta(hours=24)
# Pillow refuses images above this many pixels (a "decompression bomb" of a few kB that
# would take gigabytes to open); 50 megapixels is above any phone camera.
MAX_PIXELS = 50_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own guard, at this bound, for every open
JPEG_QUALITY = 85  # what phones themselves use; keeps a 12 MP photo near 2-3 MB

_PILLOW_FORMATS = {"JPEG": MediaType.JPEG, "PNG": MediaType.PNG}
_NAMES = {MediaType.JPEG: "JPEG", MediaType.PNG: "PNG", MediaType.PDF: "PDF"}


@dataclass(frozen=True)
class Prepared:
    """An accepted file as it will be kept: cleaned bytes, their type and hash."""

    media_type: MediaType
    data: bytes
    sha256: str

    @property
    def size(self) -> int:
        return len(self.data)


def _accepted_names(kind: AttachmentKind) -> str:
    names = [_NAMES[m] for m in ACCEPTED[kind]]
    return ", ".join(names[:-1]) + " atau " + names[-1]


def prepare(kind: AttachmentKind, data: bytes, field: str = "file") -> Prepared:
    """The file `data` as it will be kept, or `InvalidField` on `field` saying what is
    wrong in words a citizen understands (Indonesian, the portal's first language)."""
    cap = MAX_BYTES[kind]
    if not data:
        raise InvalidField(field, "Berkas kosong. Pilih berkas lagi.")
    if len(data) > cap:
        raise InvalidField(field, f"Berkas lebih besar dari {cap // MB} MB.")
    media_type = _sniff(data)
    if media_type is None or media_type not in ACCEPTED[kind]:
        raise InvalidField(field, f"Berkas harus berupa {_accepted_names(kind)}.")
    if media_type is MediaType.PDF:
        _check_pdf(data, field)
        clean = data
    else:
        clean = _reencode(data, media_type, field)
    return Prepared(media_type, clean, hashlib.sha256(clean).hexdigest())


def _sniff(data: bytes) -> MediaType | None:
    """The type the content says it is (the file's name and declared type are ignored)."""
    if data.startswith(b"%PDF-"):
        return MediaType.PDF
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                return _PILLOW_FORMATS.get(image.format or "")
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning, OSError):
        return None


def _reencode(data: bytes, media_type: MediaType, field: str) -> bytes:
    """The picture's pixels alone, saved again: no EXIF (GPS), no text chunks, no ICC
    profile beyond sRGB pixels; the EXIF orientation applied first so nothing turns."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            upright = ImageOps.exif_transpose(image) or image
            out = io.BytesIO()
            if media_type is MediaType.JPEG:
                upright.convert("RGB").save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
            else:
                keep = upright if upright.mode in ("RGB", "RGBA", "L", "LA", "P") else upright.convert("RGBA")
                keep.save(out, "PNG", optimize=True)
            return out.getvalue()
    except (Image.DecompressionBombError, OSError, ValueError, SyntaxError) as exc:
        raise InvalidField(
            field, "Gambar tidak dapat dibaca. Ambil foto lagi atau pilih berkas lain."
        ) from exc


def _check_pdf(data: bytes, field: str) -> None:
    """A document must open and every page must parse: a broken or disguised file is
    refused here rather than found by the officer who opens it."""
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise InvalidField(field, "PDF dilindungi kata sandi. Unggah PDF tanpa kata sandi.")
        if not reader.pages:
            raise InvalidField(field, "PDF tidak berisi halaman.")
        for page in reader.pages:
            page.get_contents()
    except InvalidField:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError, RecursionError) as exc:
        raise InvalidField(field, "PDF tidak dapat dibaca. Periksa berkasnya lalu unggah lagi.") from exc


# ----- where the bytes are ------------------------------------------------------------


class AttachmentStore(Protocol):
    """Where an attachment's bytes are, by the attachment's id."""

    async def put(self, attachment_id: uuid.UUID, data: bytes) -> None: ...

    async def get(self, attachment_id: uuid.UUID) -> bytes: ...

    async def delete(self, attachment_id: uuid.UUID) -> None: ...


class FileStore:
    """Bytes in files below `root` (one folder per service), written atomically: a reader
    never sees half a file, and a crash leaves at most a temporary file behind."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, attachment_id: uuid.UUID) -> Path:
        name = attachment_id.hex
        return self.root / name[:2] / name

    async def put(self, attachment_id: uuid.UUID, data: bytes) -> None:
        await asyncio.to_thread(self._write, self._path(attachment_id), data)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".part")
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)

    async def get(self, attachment_id: uuid.UUID) -> bytes:
        return await asyncio.to_thread(self._path(attachment_id).read_bytes)

    async def delete(self, attachment_id: uuid.UUID) -> None:
        await asyncio.to_thread(self._path(attachment_id).unlink, missing_ok=True)


class S3Store:
    """Bytes in an S3-compatible bucket, below `prefix` (the service's name) and keyed like
    the files of `FileStore`. The client (MinIO's, which speaks plain S3) blocks, so each
    call runs in a thread."""

    def __init__(self, client: Minio, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    @classmethod
    def of(cls, platform: PlatformSettings, prefix: str) -> S3Store:
        endpoint = urlsplit(platform.attachments_s3_endpoint or "")
        if endpoint.scheme not in ("http", "https") or not endpoint.netloc:
            raise ValueError("SINERGI_ATTACHMENTS_S3_ENDPOINT must be an http(s):// address")
        secret = platform.attachments_s3_secret_access_key
        if platform.environment == "production" and not (platform.attachments_s3_access_key_id and secret):
            raise ValueError("an S3 store needs SINERGI_ATTACHMENTS_S3_ACCESS_KEY_ID and _SECRET_ACCESS_KEY")
        client = Minio(
            endpoint.netloc,
            access_key=platform.attachments_s3_access_key_id,
            secret_key=secret.get_secret_value() if secret else None,
            secure=endpoint.scheme == "https",
            region=platform.attachments_s3_region,
        )
        return cls(client, platform.attachments_s3_bucket, prefix)

    def _key(self, attachment_id: uuid.UUID) -> str:
        name = attachment_id.hex
        return f"{self.prefix}/{name[:2]}/{name}"

    async def put(self, attachment_id: uuid.UUID, data: bytes) -> None:
        key = self._key(attachment_id)
        await asyncio.to_thread(self.client.put_object, self.bucket, key, io.BytesIO(data), len(data))

    async def get(self, attachment_id: uuid.UUID) -> bytes:
        return await asyncio.to_thread(self._read, self._key(attachment_id))

    def _read(self, key: str) -> bytes:
        try:
            response = self.client.get_object(self.bucket, key)
        except S3Error as exc:
            if exc.code == "NoSuchKey":
                raise FileNotFoundError(key) from exc
            raise
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    async def delete(self, attachment_id: uuid.UUID) -> None:
        # S3 answers a delete of a missing object as done, like unlink(missing_ok=True).
        await asyncio.to_thread(self.client.remove_object, self.bucket, self._key(attachment_id))


def store_for(platform: PlatformSettings, service: str) -> AttachmentStore:
    """Where `service` keeps attachments' bytes: the S3-compatible bucket when an endpoint
    is configured, else a folder of its own below `attachments_dir`."""
    if platform.attachments_s3_endpoint:
        return S3Store.of(platform, service)
    return FileStore(platform.attachments_dir / service)


# ----- what the service's database holds -----------------------------------------------


@dataclass(frozen=True)
class Attachment:
    id: uuid.UUID
    kind: AttachmentKind
    media_type: MediaType
    size: int
    sha256: str
    owner: str | None  # the case's public code once claimed; None while staged
    label: str | None  # what it is for the case: a permit document's code
    created_at: datetime

    def ref(self, label: str | None = None) -> AttachmentRef:
        """How events and cases name it (with `label`, what it is for the case)."""
        return AttachmentRef(
            id=self.id, media_type=self.media_type.value, sha256=self.sha256, size=self.size, label=label
        )


_COLUMN_NAMES = ("id", "kind", "media_type", "size_bytes", "sha256", "owner", "label", "created_at")
_COLUMNS = ", ".join(_COLUMN_NAMES)


def _attachment(row: asyncpg.Record) -> Attachment:
    return Attachment(
        id=row["id"],
        kind=AttachmentKind(row["kind"]),
        media_type=MediaType(row["media_type"]),
        size=row["size_bytes"],
        sha256=row["sha256"],
        owner=row["owner"],
        label=row["label"],
        created_at=row["created_at"],
    )


class AttachmentRepository:
    """The attachment rows of one service, inside the caller's transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def stage(
        self, attachment_id: uuid.UUID, kind: AttachmentKind, prepared: Prepared, now: datetime
    ) -> Attachment:
        row = await self.conn.fetchrow(
            "INSERT INTO attachment (id, kind, media_type, size_bytes, sha256, created_at)"
            f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLUMNS}",
            attachment_id,
            kind.value,
            prepared.media_type.value,
            prepared.size,
            prepared.sha256,
            now,
        )
        return _attachment(row)

    async def claim(
        self, kind: AttachmentKind, ids: list[uuid.UUID], owner: str, labels: list[str | None] | None = None
    ) -> list[Attachment]:
        """Give the staged attachments `ids` to the case `owner`; those it could claim
        (unknown, other-kind, already claimed or erased ones are left out)."""
        labels = labels or [None] * len(ids)
        rows = await self.conn.fetch(
            "UPDATE attachment a SET owner = $3, label = w.label FROM unnest($1::uuid[], $4::text[]) AS w(id, label)"
            " WHERE a.id = w.id AND a.kind = $2 AND a.owner IS NULL AND a.erased_at IS NULL"
            f" RETURNING {', '.join('a.' + c for c in _COLUMN_NAMES)}",
            ids,
            kind.value,
            owner,
            labels,
        )
        claimed = {row["id"]: _attachment(row) for row in rows}
        return [claimed[i] for i in ids if i in claimed]

    async def staged(self, kind: AttachmentKind, ids: list[uuid.UUID]) -> list[Attachment]:
        """Those of `ids` that are uploads of `kind` no case has claimed yet."""
        rows = await self.conn.fetch(
            f"SELECT {_COLUMNS} FROM attachment"
            " WHERE id = ANY($1::uuid[]) AND kind = $2 AND owner IS NULL AND erased_at IS NULL",
            ids,
            kind.value,
        )
        return [_attachment(r) for r in rows]

    async def of_owner(self, owner: str) -> list[Attachment]:
        rows = await self.conn.fetch(
            f"SELECT {_COLUMNS} FROM attachment WHERE owner = $1 AND erased_at IS NULL ORDER BY created_at, id",
            owner,
        )
        return [_attachment(r) for r in rows]

    async def find(self, owner: str, attachment_id: uuid.UUID) -> Attachment | None:
        row = await self.conn.fetchrow(
            f"SELECT {_COLUMNS} FROM attachment WHERE owner = $1 AND id = $2 AND erased_at IS NULL",
            owner,
            attachment_id,
        )
        return _attachment(row) if row else None

    async def erase_owners(self, owners: list[str], now: datetime) -> int:
        """Mark the attachments of the cases `owners` erased (their bytes go in `purge`,
        after the erasure commits); how many were marked."""
        status = await self.conn.execute(
            "UPDATE attachment SET erased_at = $2 WHERE owner = ANY($1::text[]) AND erased_at IS NULL",
            owners,
            now,
        )
        return int(status.split()[-1])

    async def expire_staged(self, now: datetime) -> int:
        """Mark as erased the uploads staged more than `STAGED_TTL` ago and never claimed."""
        status = await self.conn.execute(
            "UPDATE attachment SET erased_at = $1 WHERE owner IS NULL AND erased_at IS NULL AND created_at < $2",
            now,
            now - STAGED_TTL,
        )
        return int(status.split()[-1])

    async def to_purge(self, limit: int) -> list[uuid.UUID]:
        rows = await self.conn.fetch(
            "SELECT id FROM attachment WHERE erased_at IS NOT NULL AND NOT purged ORDER BY erased_at LIMIT $1",
            limit,
        )
        return [r["id"] for r in rows]

    async def purged(self, ids: list[uuid.UUID]) -> None:
        await self.conn.execute("UPDATE attachment SET purged = true WHERE id = ANY($1::uuid[])", ids)


PURGE_BATCH = 500


async def purge(pool: asyncpg.Pool, store: AttachmentStore, now: datetime) -> int:
    """Delete the bytes of erased attachments and of staged ones nobody claimed within
    `STAGED_TTL`; the rows stay as the record that something was there and is gone.
    Run after an erasure commits and as a periodic job; how many files were deleted."""
    async with pool.acquire() as conn:
        repository = AttachmentRepository(conn)
        await repository.expire_staged(now)
        ids = await repository.to_purge(PURGE_BATCH)
        for attachment_id in ids:
            await store.delete(attachment_id)
        if ids:
            await repository.purged(ids)
    return len(ids)


UNUSABLE = "Berkas ini tidak ditemukan atau sudah dipakai. Unggah lagi."


class Attachments:
    """One service's attachments: the store of their bytes and their rows, as its use
    cases reach them (`UseCaseContext.attachments`)."""

    def __init__(
        self, pool: Callable[[], asyncpg.Pool], store: AttachmentStore, clock: Callable[[], datetime]
    ) -> None:
        self.pool = pool
        self.store = store
        self.clock = clock

    async def stage(self, kind: AttachmentKind, data: bytes, field: str = "file") -> Attachment:
        """Check and clean an upload (`prepare`, off the event loop: re-encoding a phone
        photo takes a CPU for a moment), keep its bytes, then its row. A refused upload
        keeps nothing; a crash between the two leaves bytes no row names, never a row
        without bytes."""
        prepared = await asyncio.to_thread(prepare, kind, data, field)
        attachment_id = uuid.uuid4()
        await self.store.put(attachment_id, prepared.data)
        async with self.pool().acquire() as conn:
            return await AttachmentRepository(conn).stage(attachment_id, kind, prepared, self.clock())

    async def staged(
        self, kind: AttachmentKind, ids: Sequence[uuid.UUID], locations: Sequence[Location]
    ) -> list[Attachment]:
        """The staged uploads `ids`, in that order, for a case about to be created; a
        422 on the request location (`locations`, one per id) of each id that names no
        usable upload."""
        if not ids:  # most cases carry none: no round trip to the database for them
            return []
        async with self.pool().acquire() as conn:
            found = {a.id: a for a in await AttachmentRepository(conn).staged(kind, list(ids))}
        missing = [(loc, UNUSABLE) for i, loc in zip(ids, locations, strict=True) if i not in found]
        if missing:
            raise InvalidFields(missing)
        return [found[i] for i in ids]

    @staticmethod
    async def claim(
        conn: asyncpg.Connection,
        kind: AttachmentKind,
        attachments: Sequence[Attachment | AttachmentRef],
        owner: str,
        field: str,
    ) -> None:
        """Give the uploads `attachments` (as `staged` found them, or as the case names
        them, labelled) to the case `owner` in the caller's unit of work; if another
        request claimed one meanwhile, refuse (the unit of work rolls back)."""
        if not attachments:
            return
        ids = [a.id for a in attachments]
        claimed = await AttachmentRepository(conn).claim(kind, ids, owner, [a.label for a in attachments])
        if len(claimed) != len(ids):
            raise InvalidField(field, UNUSABLE)

    async def listed(self, owner: str) -> list[Attachment]:
        async with self.pool().acquire() as conn:
            return await AttachmentRepository(conn).of_owner(owner)

    async def open(self, owner: str, attachment_id: uuid.UUID) -> tuple[Attachment, bytes]:
        """An attachment of the case `owner` and its bytes; 404 for any other id."""
        async with self.pool().acquire() as conn:
            attachment = await AttachmentRepository(conn).find(owner, attachment_id)
        if attachment is None:
            raise NotFound(f"no attachment {attachment_id} on {owner}")
        return attachment, await self.store.get(attachment_id)

    async def purge(self) -> int:
        """See `purge`: the periodic job of a service that keeps attachments."""
        return await purge(self.pool(), self.store, self.clock())


class AttachmentOut(BaseModel):
    """An upload as the citizen's client gets it back: the id to name in the case."""

    id: uuid.UUID = Field(description="Name it in the case being filed or submitted")
    media_type: str
    size: int = Field(description="Bytes, as kept (images re-encoded without EXIF: no GPS position)")
    sha256: str


class OfficerAttachmentOut(AttachmentOut):
    url: str = Field(description="Where an officer who may see the case downloads it (an audited read)")


def upload_route(
    router: APIRouter, path: str, limit: Limit, tag: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`POST <path>`: a citizen's upload of one file for a case about to be filed, staged
    and answered 201 with its `AttachmentOut`; `limit` caps the uploads per client address."""
    return router.post(path, status_code=201, response_model=AttachmentOut, tags=[tag], **limited(limit))


def attachment_view(attachment: Attachment, url: str | None = None) -> dict[str, Any]:
    """`AttachmentOut` (with `url`, `OfficerAttachmentOut`) of `attachment`."""
    view: dict[str, Any] = {
        "id": attachment.id,
        "media_type": attachment.media_type.value,
        "size": attachment.size,
        "sha256": attachment.sha256,
    }
    return {**view, "url": url} if url else view


EXTENSIONS = {MediaType.JPEG: "jpg", MediaType.PNG: "png", MediaType.PDF: "pdf"}
# An attachment opened on its own: nothing runs and nothing loads from elsewhere; the
# image (or the browser's PDF viewer) comes from the same origin, and the browser's own
# image page styles itself inline.
ATTACHMENT_CSP = "default-src 'none'; img-src 'self'; object-src 'self'; style-src 'unsafe-inline'"


def inline_headers(attachment_id: uuid.UUID, media_type: MediaType) -> dict[str, str]:
    """The headers of an attachment an officer's browser shows inline (images, PDFs) and
    never guesses another type for, nor keeps in a shared cache (the services' answer,
    and the portal's as it passes one on)."""
    return {
        "Content-Type": media_type.value,
        "Content-Disposition": f'inline; filename="{attachment_id}.{EXTENSIONS[media_type]}"',
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
        "Content-Security-Policy": ATTACHMENT_CSP,
    }


def attachment_response(attachment: Attachment, data: bytes) -> Response:
    """The bytes as `inline_headers` describe them."""
    return Response(
        content=data,
        media_type=attachment.media_type.value,
        headers=inline_headers(attachment.id, attachment.media_type),
    )
