"""The request bodies of the services' routes. One rule for all of them: unknown fields
are rejected (422), so a misspelt field is an error instead of being silently dropped.
Text PostgreSQL cannot store, such as a NUL character, is answered 422 by the kit's
error handler."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class RequestBody(BaseModel):
    """The base of a route's request body."""

    model_config = ConfigDict(extra="forbid")


def with_example(example: dict[str, Any]) -> ConfigDict:
    """The `model_config` of a request body whose documentation (its JSON Schema, the
    OpenAPI page) shows `example`. A value may be a function, called each time the
    schema is written: an example date must lie ahead of whoever copies it from /docs,
    so it is worked out then (the kit's app writes its OpenAPI afresh each hour)."""

    def add_example(schema: dict[str, Any], _model: type[BaseModel]) -> None:
        schema["example"] = {key: value() if callable(value) else value for key, value in example.items()}

    return ConfigDict(extra="forbid", json_schema_extra=add_example)


def example_of(model: type[BaseModel]) -> dict[str, Any]:
    """The example `model`'s documentation shows today."""
    example = model.model_json_schema().get("example")
    if not isinstance(example, dict):
        raise ValueError(f"{model.__name__} documents no example")
    return example
