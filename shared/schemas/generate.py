"""Generate the published contracts from the pydantic models.

- `shared/schemas/jsonschema/<event type>.json`: one JSON Schema per event type (the
  full CloudEvent with its typed `data`), kept in sync by tests/unit/test_schemas.py;
- `docs/asyncapi/<service>.yaml`: an AsyncAPI 3.0 document per service.

`python -m shared.schemas.generate --json-schema --asyncapi` (`make docs`).
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

import yaml

from shared.schemas.envelope import CONTENT_TYPE, Envelope
from shared.schemas.registry import DOMAIN_TOPICS, DOMAINS, EGOV_TOPICS, EVENT_TYPES, Domain

ROOT = Path(__file__).resolve().parents[2]
JSON_SCHEMA_DIR = Path(__file__).with_name("jsonschema")
ASYNCAPI_DIR = ROOT / "docs" / "asyncapi"

# What each consuming service subscribes to (what each domain service publishes is DOMAINS).
CONSUMERS: dict[str, list[str]] = {
    "integration": DOMAIN_TOPICS,
    "notifications": EGOV_TOPICS,
}


def event_schema(event_type: str) -> dict[str, Any]:
    """JSON Schema of one event type: the envelope with `type` fixed and `data` typed."""
    model = EVENT_TYPES[event_type]
    envelope = Envelope.model_json_schema()
    data = model.model_json_schema()
    defs = {**envelope.pop("$defs", {}), **data.pop("$defs", {})}
    envelope["title"] = event_type
    envelope["properties"]["type"] = {"const": event_type, "type": "string"}
    envelope["properties"]["data"] = data
    envelope["required"] = sorted({*envelope.get("required", []), "data", "type", "subject"})
    if defs:
        envelope["$defs"] = defs
    envelope["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    envelope["$id"] = f"urn:sinergi:schema:{event_type}"
    return envelope


def json_schemas() -> dict[str, str]:
    return {f"{t}.json": json.dumps(event_schema(t), indent=2, sort_keys=True) + "\n" for t in EVENT_TYPES}


def _message_name(event_type: str) -> str:
    return EVENT_TYPES[event_type].__name__


def _channel_id(topic: str) -> str:
    return topic.replace(".", "_")


def asyncapi(service: str, produces: list[Domain], consumes: list[Domain]) -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for action, domains in (("send", produces), ("receive", consumes)):
        for domain in domains:
            cid = _channel_id(domain.topic)
            channel = channels.setdefault(
                cid,
                {
                    "address": domain.topic,
                    "description": f"Events of the {domain.name} domain, keyed by aggregate id.",
                    "messages": {},
                },
            )
            refs = []
            for event_type in domain.events:
                name = _message_name(event_type)
                schema = copy.deepcopy(event_schema(event_type))
                for def_name, definition in schema.pop("$defs", {}).items():
                    schemas[def_name] = definition
                schema.pop("$schema", None)
                schemas[name] = schema
                messages[name] = {
                    "name": event_type,
                    "title": name,
                    "contentType": CONTENT_TYPE,
                    "payload": {"$ref": f"#/components/schemas/{name}"},
                    "bindings": {
                        "kafka": {
                            "key": {"type": "string", "description": "Aggregate id (CloudEvent subject)"},
                            "bindingVersion": "0.5.0",
                        }
                    },
                }
                channel["messages"][name] = {"$ref": f"#/components/messages/{name}"}
                refs.append({"$ref": f"#/channels/{cid}/messages/{name}"})
            verb = "publish" if action == "send" else "consume"
            operations[f"{verb}_{cid}"] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{cid}"},
                "messages": refs,
            }
    text = json.dumps(schemas).replace("#/$defs/", "#/components/schemas/")
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": f"Sinergi {service} events",
            "version": "0.1.0",
            "description": "CloudEvents 1.0 in structured mode on Kafka (see docs/architecture.md).",
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "kafka": {"host": "kafka:9092", "protocol": "kafka", "description": "docker-compose broker"}
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": json.loads(text)},
    }


def asyncapi_documents() -> dict[str, str]:
    """One document per service: what it publishes (its domain) and what it consumes."""
    docs = {}
    for name in sorted({*DOMAINS, *CONSUMERS}):
        produced = [DOMAINS[name]] if name in DOMAINS else []
        consumed = [d for d in DOMAINS.values() if d.topic in CONSUMERS.get(name, [])]
        document = asyncapi(name, produced, consumed)
        docs[f"{name}.yaml"] = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    return docs


def _write(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json-schema", action="store_true")
    parser.add_argument("--asyncapi", action="store_true")
    args = parser.parse_args()
    if args.json_schema:
        _write(JSON_SCHEMA_DIR, json_schemas())
    if args.asyncapi:
        _write(ASYNCAPI_DIR, asyncapi_documents())


if __name__ == "__main__":
    main()
