"""The portal's rules without I/O: the pages' order, what each page accepts, the
complaint a finished draft makes, the codes Lacak routes and the history's words."""

from __future__ import annotations

import pytest

from services.portal import domain
from services.portal.domain import CHECK, NO, YES, Draft, tile_in_regency, tile_of
from services.portal.i18n import MESSAGES, translator

CATEGORIES = {"jalan_rusak", "sampah"}
FINISHED = {
    "jenis": "pengaduan",
    "kategori": "jalan_rusak",
    "kecamatan": "33.06.01",
    "desa": "33.06.01.2001",
    "lokasi": None,
    "judul": "Jalan berlubang",
    "uraian": "Lubang besar di jalan desa.",
    "foto": ["3f0c1c8e-2b7a-4c49-9f7e-2f4f0f6f2a11"],
    "foto_selesai": True,
    "anonim": NO,
    "rahasia": YES,
    "nik": "3306061708900001",
    "telepon": "+6281234567890",
    "email": "",
}


def read(step: str, draft: dict | None = None, **form: str) -> domain.Answer:
    return domain.read_page(step, form, draft or {}, CATEGORIES)


def test_pages_follow_in_order_and_an_anonymous_report_asks_no_reporter() -> None:
    assert domain.first_unanswered({}) == "jenis"
    assert domain.next_page({"jenis": "aspirasi"}, "jenis", checking=False) == "kategori"
    anonymous = {**FINISHED, "anonim": YES}
    del anonymous["nik"]
    assert "pelapor" not in domain.steps_for(anonymous)
    assert domain.first_unanswered(anonymous) is None
    assert domain.next_page(anonymous, "privasi", checking=False) == CHECK
    assert domain.previous_page(anonymous, CHECK) == "privasi"
    assert domain.previous_page(FINISHED, CHECK) == "pelapor"
    assert domain.previous_page(FINISHED, "jenis") is None


def test_changing_an_answer_returns_to_the_check_page_unless_it_opened_a_question() -> None:
    assert domain.next_page(FINISHED, "isi", checking=True) == CHECK
    new_kecamatan = {**FINISHED, **read("kecamatan", FINISHED, kecamatan="33.06.02").values}
    assert new_kecamatan["desa"] == ""
    assert domain.next_page(new_kecamatan, "kecamatan", checking=True) == "desa"
    # The same kecamatan again keeps the desa, which is asked next all the same (the
    # citizen changing the location may mean the desa).
    assert "desa" not in read("kecamatan", FINISHED, kecamatan="33.06.01").values
    assert domain.next_page(FINISHED, "kecamatan", checking=True) == "desa"
    assert domain.next_page(FINISHED, "desa", checking=True) == CHECK


@pytest.mark.parametrize(
    ("step", "form", "errors"),
    [
        ("jenis", {}, {"jenis": "error.jenis.choose"}),
        ("jenis", {"jenis": "lainnya"}, {"jenis": "error.jenis.choose"}),
        ("kategori", {"kategori": "tidak_ada"}, {"kategori": "error.kategori.choose"}),
        ("kecamatan", {"kecamatan": "33.07.01"}, {"kecamatan": "error.kecamatan.choose"}),
        (
            "isi",
            {"judul": "abc", "uraian": " "},
            {"judul": "error.judul.short", "uraian": "error.uraian.empty"},
        ),
        (
            "isi",
            {"judul": "x" * 151, "uraian": "y" * 5001},
            {"judul": "error.judul.long", "uraian": "error.uraian.long"},
        ),
        ("privasi", {"anonim": YES}, {"rahasia": "error.rahasia.choose"}),
        ("pelapor", {"nik": "12345"}, {"nik": "error.nik.invalid", "telepon": "error.kontak.empty"}),
        ("pelapor", {"nik": "3306061708900001", "telepon": "12"}, {"telepon": "error.telepon.invalid"}),
        ("pelapor", {"nik": "3306061708900001", "email": "nama@"}, {"email": "error.email.invalid"}),
    ],
)
def test_each_page_refuses_what_the_service_would_with_a_message_for_the_field(
    step: str, form: dict[str, str], errors: dict[str, str]
) -> None:
    assert read(step, **form).errors == errors


def test_a_desa_of_another_kecamatan_is_refused_and_the_phone_position_is_kept_inside_purworejo() -> None:
    draft = {"kecamatan": "33.06.01"}
    assert read("desa", draft, desa="33.06.02.2001").errors == {"desa": "error.desa.choose"}
    inside = read("desa", draft, desa="33.06.01.2001", lat="-7.6501234", lon="110.0012")
    assert inside.values == {"desa": "33.06.01.2001", "lokasi": {"lat": -7.650123, "lon": 110.0012}}
    assert read("desa", draft, desa="33.06.01.2001", lat="-6.2", lon="106.8").values["lokasi"] is None
    assert read("desa", draft, desa="33.06.01.2001", lat="", lon="").values["lokasi"] is None


def test_a_reporter_is_read_as_the_service_keeps_it() -> None:
    answer = read("pelapor", nik="3306 0617 0890 0001", telepon="0812-3456-7890", email="")
    assert answer.errors == {}
    assert answer.values == {"nik": "3306061708900001", "telepon": "+6281234567890", "email": ""}


def test_a_finished_draft_makes_the_complaint_and_an_anonymous_one_names_nobody() -> None:
    body = domain.complaint_body(FINISHED, "id")
    assert body["reporter"] == {"nik": "3306061708900001", "phone": "+6281234567890"}
    assert body["confidential"] is True and body["anonymous"] is False
    assert body["photos"] == FINISHED["foto"] and "location" not in body
    anonymous = domain.complaint_body(
        {**FINISHED, "anonim": YES, "lokasi": {"lat": -7.7, "lon": 110.0}}, "en"
    )
    assert "reporter" not in anonymous and anonymous["location"] == {"lat": -7.7, "lon": 110.0}
    assert anonymous["locale"] == "en"
    assert Draft(FINISHED).photos == FINISHED["foto"]


def test_a_code_names_the_service_that_holds_its_case() -> None:
    assert domain.code_and_service(" adu-2611-7k3m-9qw2-xab4d ") == ("ADU-2611-7K3M-9QW2-XAB4D", "complaints")
    assert domain.code_and_service("IZN-2611-7K3M-9QW2-XAB4D")[1] == "permits"
    assert domain.code_and_service("KES-2611-7K3M-9QW2-XAB4D")[1] == "health"
    assert domain.code_and_service("XYZ-2611-7K3M-9QW2-XAB4D") is None
    assert domain.code_and_service("ADU-2611") is None


def test_history_is_one_line_per_action_in_words_of_both_languages() -> None:
    history = [
        {"at": "2026-11-02T01:00:00+00:00", "action": "filed", "status": "submitted", "note": None},
        {
            "at": "2026-11-03T01:00:00+00:00",
            "action": "rejected:out_of_scope",
            "status": "rejected",
            "note": "Bukan wewenang kabupaten",
        },
    ]
    lines = domain.history_lines("complaints", history)
    assert [line.key for line in lines] == ["history.complaints.filed", "history.complaints.rejected"]
    assert lines[1].note == "Bukan wewenang kabupaten"
    assert translator("id")(lines[1].key) == "Laporan tidak dapat ditindaklanjuti"
    assert translator("en")(lines[1].key) == "The report cannot be taken further"


def test_both_languages_have_every_text() -> None:
    assert set(MESSAGES["id"]) == set(MESSAGES["en"])


# ----- the map's tiles ---------------------------------------------------------------------


def test_the_tile_of_purworejo_town_at_each_zoom() -> None:
    # Worked by hand from the Web Mercator formulas for (-7.713, 110.008).
    assert tile_of(-7.713, 110.008, 11) == (1649, 1068)
    assert tile_of(-7.713, 110.008, 15) == (26397, 17088)


def test_only_the_regencys_tiles_at_the_maps_zooms_are_passed_on() -> None:
    town = tile_of(-7.713, 110.008, 15)
    assert tile_in_regency(15, *town)
    jakarta = tile_of(-6.2, 106.8, 15)
    assert not tile_in_regency(15, *jakarta)
    assert not tile_in_regency(10, *tile_of(-7.713, 110.008, 10))  # coarser than the map offers
    assert not tile_in_regency(19, *tile_of(-7.713, 110.008, 19))
    # The regency's corners are in; one tile beyond them is not.
    west, north = tile_of(-7.4, 109.7, 13)
    east, south = tile_of(-8.0, 110.3, 13)
    assert tile_in_regency(13, west, north) and tile_in_regency(13, east, south)
    assert not tile_in_regency(13, west - 1, north) and not tile_in_regency(13, east, south + 1)
