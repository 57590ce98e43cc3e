"""What an upload becomes, decided by its content (shared/kit/attachments.py)."""

from __future__ import annotations

import hashlib
import io
import uuid
from pathlib import Path

import pytest
from PIL import ExifTags, Image

from shared.kit.attachments import (
    MAX_BYTES,
    AttachmentKind,
    FileStore,
    MediaType,
    prepare,
)
from shared.kit.errors import InvalidField
from tests.attachment_support import GPS, pdf, phone_photo


def refusal(kind: AttachmentKind, data: bytes) -> str:
    with pytest.raises(InvalidField) as refused:
        prepare(kind, data, "foto")
    assert refused.value.loc == ("body", "foto")
    return refused.value.message


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_photo_is_kept_without_its_gps_position_or_camera(fmt: str) -> None:
    original = phone_photo(fmt)
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(ExifTags.IFD.GPSInfo) == GPS

    kept = prepare(AttachmentKind.PHOTO, original)

    image = Image.open(io.BytesIO(kept.data))
    assert kept.media_type == MediaType(Image.MIME[image.format or ""])
    assert dict(image.getexif()) == {}
    assert b"KameraHP" not in kept.data and b"Exif" not in kept.data
    assert image.size == (48, 64), "the orientation is applied to the pixels before EXIF is dropped"
    assert kept.sha256 == hashlib.sha256(kept.data).hexdigest()


def test_a_pdf_is_a_document_and_is_kept_as_it_is() -> None:
    document = pdf(pages=2)
    kept = prepare(AttachmentKind.DOCUMENT, document)
    assert kept.media_type is MediaType.PDF
    assert kept.data == document


def test_a_pdf_named_like_a_photo_is_not_a_photo() -> None:
    assert "JPEG atau PNG" in refusal(AttachmentKind.PHOTO, pdf())


@pytest.mark.parametrize(
    "disguised",
    [
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + bytes(200),  # a Windows program
        b"\x7fELF\x02\x01\x01" + bytes(200),  # a Linux program
        b"<html><script>alert(1)</script></html>",
        b"PK\x03\x04" + bytes(100),  # a zip (or .docx)
    ],
)
def test_a_program_or_page_named_pdf_is_refused(disguised: bytes) -> None:
    assert "JPEG, PNG atau PDF" in refusal(AttachmentKind.DOCUMENT, disguised)


def test_a_broken_pdf_is_refused_before_an_officer_opens_it() -> None:
    assert "PDF tidak dapat dibaca" in refusal(AttachmentKind.DOCUMENT, b"%PDF-1.7\n" + bytes(500))


def test_a_truncated_photo_is_refused() -> None:
    assert refusal(AttachmentKind.PHOTO, phone_photo()[:200])


def test_files_above_the_cap_are_refused_before_they_are_parsed() -> None:
    eleven_mb = b"%PDF-1.7\n" + bytes(11 * 1024 * 1024)
    assert "10 MB" in refusal(AttachmentKind.DOCUMENT, eleven_mb)
    assert "5 MB" in refusal(AttachmentKind.PHOTO, bytes(MAX_BYTES[AttachmentKind.PHOTO] + 1))
    assert "kosong" in refusal(AttachmentKind.PHOTO, b"")


def test_a_decompression_bomb_is_refused() -> None:
    out = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(out, "PNG")  # a few kB, 400 megapixels
    assert len(out.getvalue()) < MAX_BYTES[AttachmentKind.PHOTO]
    assert refusal(AttachmentKind.PHOTO, out.getvalue())


def _files(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*") if p.is_file()]


async def test_the_file_store_keeps_bytes_by_id_only(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    attachment_id = uuid.uuid4()
    await store.put(attachment_id, b"bytes")
    assert await store.get(attachment_id) == b"bytes"
    assert _files(tmp_path) == [attachment_id.hex]
    await store.delete(attachment_id)
    await store.delete(attachment_id)  # deleting twice is not an error (a purge retried)
    with pytest.raises(FileNotFoundError):
        await store.get(attachment_id)
