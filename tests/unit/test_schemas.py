"""Event contracts: generated files in sync, old events still parse, envelope rules."""

from __future__ import annotations

import contextlib
import json
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from cloudevents.core.exceptions import CloudEventValidationError

from shared.schemas import CONTENT_TYPE, EVENT_TYPES, EventRejected, make_envelope, parse_record
from shared.schemas.complaints import SOURCE, ComplaintVerified
from shared.schemas.envelope import Envelope, _is_wire, new_event_id
from shared.schemas.generate import ASYNCAPI_DIR, JSON_SCHEMA_DIR, asyncapi_documents, json_schemas
from tests.events import complaint_data

CORPUS = Path(__file__).resolve().parents[1] / "contracts" / "corpus"


def test_json_schema_files_match_the_models() -> None:
    generated = json_schemas()
    on_disk = {p.name: p.read_text() for p in JSON_SCHEMA_DIR.glob("*.json")}
    assert set(on_disk) == set(generated), "run `make schemas`"
    for name, text in generated.items():
        assert on_disk[name] == text, f"{name} drifted from its model: run `make schemas`"


def test_asyncapi_documents_match_the_models() -> None:
    for name, text in asyncapi_documents().items():
        path = ASYNCAPI_DIR / name
        assert path.exists() and path.read_text() == text, f"{name} drifted: run `make docs`"


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.json")), ids=lambda p: p.stem)
def test_old_events_still_parse(path: Path) -> None:
    parsed = parse_record(path.read_bytes())
    assert isinstance(parsed.data, EVENT_TYPES[parsed.envelope.type])
    assert parsed.envelope.subject


def test_corpus_covers_every_event_type() -> None:
    """Every registered type has its `<type>.json` in the corpus (see tests/contracts/README.md)."""
    missing = sorted(set(EVENT_TYPES) - {p.stem for p in CORPUS.glob("*.json")})
    assert not missing, f"no event in tests/contracts/corpus/ for: {', '.join(missing)}"


def test_corpus_files_are_named_after_their_type() -> None:
    misnamed = {
        p.name: event_type
        for p in sorted(CORPUS.glob("*.json"))
        if (event_type := json.loads(p.read_text()).get("type")) != p.stem
    }
    assert not misnamed, f"corpus files whose name is not `<type>.json` (name: type): {misnamed}"


def _verified() -> ComplaintVerified:
    return complaint_data(ComplaintVerified, "c1", status="verified", verified_by="koordinator")


def test_structured_mode_round_trip() -> None:
    envelope = make_envelope(_verified(), subject="c1", source=SOURCE, region="33.06", correlation_id="x")
    message = envelope.to_kafka()
    assert message.key == "c1"
    assert message.headers["content-type"] == CONTENT_TYPE.encode()
    body = json.loads(message.value)
    assert body["specversion"] == "1.0" and body["subject"] == "c1" and body["correlationid"] == "x"
    assert body["dataschema"] == f"urn:sinergi:schema:{body['type']}"
    parsed = parse_record(message.value)
    assert parsed.envelope.id == envelope.id and parsed.data == _verified()


def test_an_event_id_is_a_random_version_4_uuid_in_its_canonical_text() -> None:
    ids = [new_event_id() for _ in range(200)]
    for event_id in ids:
        parsed = uuid.UUID(event_id)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == event_id
    assert len(set(ids)) == len(ids)
    assert uuid.UUID(make_envelope(_verified(), subject="c1", source=SOURCE, region="33.06").id).version == 4


def test_what_the_fast_writer_writes_the_sdk_reads_as_the_same_event() -> None:
    envelope = make_envelope(_verified(), subject="c1", source=SOURCE, region="33.06", correlation_id="x")
    assert Envelope._from_kafka_sdk(envelope.to_kafka().value) == envelope


def test_an_event_the_strict_wire_model_refuses_is_written_by_the_sdk() -> None:
    envelope = make_envelope(_verified(), subject="c1", source=SOURCE, region="33.06").model_copy(
        update={"datacontenttype": "application/json; charset=utf-8"}
    )
    value = envelope.to_kafka().value
    assert b'"datacontenttype": "application/json; charset=utf-8"' in value  # the SDK's spacing
    assert parse_record(value).envelope.datacontenttype == "application/json; charset=utf-8"


def test_a_newer_minor_revision_with_extra_fields_still_parses() -> None:
    envelope = make_envelope(_verified(), subject="c1", source=SOURCE, region="33.06")
    body = json.loads(envelope.to_kafka().value)
    body["data"]["added_later"] = {"optional": True}
    assert parse_record(json.dumps(body).encode()).envelope.type == envelope.type


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", "invalid_cloudevent"),
        (b'{"hello": "world"}', "invalid_cloudevent"),
        (None, "empty"),
        (b"x" * 2_000_000, "oversize"),
    ],
)
def test_poison_records_are_rejected_with_a_reason(value: bytes | None, reason: str) -> None:
    with pytest.raises(EventRejected) as caught:
        parse_record(value)
    assert caught.value.reason == reason


def test_unknown_type_and_wrong_data_are_rejected() -> None:
    body = json.loads(
        make_envelope(_verified(), subject="c1", source=SOURCE, region="33.06").to_kafka().value
    )
    unknown = {**body, "type": "id.sinergi.complaints.complaint.teleported.v1"}
    with pytest.raises(EventRejected) as caught:
        parse_record(json.dumps(unknown).encode())
    assert caught.value.reason == "unknown_type"
    wrong = {**body, "data": {**body["data"], "status": "vanished"}}
    with pytest.raises(EventRejected) as caught:
        parse_record(json.dumps(wrong).encode())
    assert caught.value.reason == "invalid_data"


# ----- the fast parse path agrees with the CloudEvents SDK ------------------------------------


def _variants(value: bytes) -> list[bytes]:
    """The corpus event as is, and altered in the ways a fast path could get wrong."""
    event = json.loads(value)
    changes: list[dict[str, object]] = [
        {},
        {"time": 1764316800},  # a number, not an RFC 3339 string
        {"time": "2026-11-28T10:00:00"},  # no offset
        {"time": "yesterday"},
        {"id": ""},
        {"specversion": "0.3"},
        {"source": ""},
        {"dataschema": "not a uri"},
        {"data": "a string"},
        {"correlationid": "abc", "causationid": "def"},
        {"comexampleextension": "value"},  # an extension Sinergi does not use
    ]
    variants = [json.dumps({**event, **change}).encode() for change in changes]
    for attribute in ("time", "subject", "datacontenttype", "dataschema", "region", "id"):
        variants.append(json.dumps({k: v for k, v in event.items() if k != attribute}).encode())
    return variants


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.json")), ids=lambda p: p.stem)
def test_fast_path_parses_exactly_as_the_sdk(path: Path) -> None:
    for value in _variants(path.read_bytes()):
        try:
            expected = Envelope._from_kafka_sdk(value)
        except Exception as exc:
            with pytest.raises(type(exc)):
                Envelope.from_kafka(value)
            continue
        if not {"time", "id"} <= json.loads(value).keys():
            continue  # left unset by the SDK, generated by the model: not comparable
        assert Envelope.from_kafka(value) == expected


# ----- the fast writer is chosen per shape, as a parse of each event would choose ------------


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"correlationid": None, "causationid": "e1", "tracestate": "v=1"},
        {"subject": ""},
        {"id": ""},
        {"time": datetime(2026, 11, 28, 10, 0)},  # no offset
        {"correlationid": ""},
        {"causationid": ""},
        {"tracestate": ""},
        {"datacontenttype": "application/json; charset=utf-8"},
        {"dataschema": "not a uri"},
        {"specversion": "0.3"},
        {"source": ""},
        {"region": ""},
        {"type": ""},
    ],
    ids=repr,
)
def test_the_writer_is_chosen_as_a_parse_of_each_event_would_choose(change: dict[str, object]) -> None:
    """An event of the shape already written must not ride on that shape's verdict when
    it differs where the wire model looks (an empty id, a time without offset, ...)."""
    usual = make_envelope(_verified(), subject="c1", source=SOURCE, region="33.06", correlation_id="x")
    usual.to_kafka()
    envelope = usual.model_copy(update={"id": str(uuid.uuid4()), **change})
    fast = envelope.__pydantic_serializer__.to_json(envelope, exclude_none=True)
    parses = _is_wire(fast)
    for _ in range(2):  # the shape's first event, and one that finds it decided
        if parses:
            assert envelope.to_kafka().value == fast
        else:  # the SDK writes it (its own spacing) or refuses to, as it decides
            with contextlib.suppress(CloudEventValidationError):
                assert envelope.to_kafka().value != fast
