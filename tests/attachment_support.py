"""Files as citizens' phones and scanners make them, and what a store keeps of them, for
the attachment tests."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
from PIL import ExifTags, Image
from pypdf import PdfWriter

from tests.harness import db_fetch

GPS = {1: "S", 2: (7.0, 42.0, 30.0), 3: "E", 4: (110.0, 0.0, 15.0)}


def phone_photo(fmt: str = "JPEG", *, orientation: int = 6) -> bytes:
    """A picture as a phone saves it: a camera make, an orientation and a GPS position."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "KameraHP"
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.IFD.GPSInfo] = GPS
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (180, 40, 40)).save(out, fmt, exif=exif)
    return out.getvalue()


def pdf(pages: int = 1) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def stored_files(root: Path) -> list[Path]:
    """The files an attachment store keeps under `root`."""
    return sorted(p for p in root.rglob("*") if p.is_file())


async def assert_refused_keeping_nothing(refused: httpx.Response, message: str, db: str, store: Path) -> None:
    """An upload refused on its `file` field with `message` (422) leaves no row in the
    service's database `db` and no bytes in the `store`."""
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["detail"]
    assert error["loc"] == ["body", "file"] and message in error["msg"]
    assert await db_fetch(db, "SELECT id FROM attachment") == []
    assert stored_files(store) == []
