"""A real OTLP/HTTP trace receiver for the tests: `shared/runtime/otel/` (a small Go
program on the OpenTelemetry Collector's pdata module, go.mod and go.sum pinned) that
decodes every export request as the collector does and appends it as a line of OTLP
JSON.

Built once with the machine's Go toolchain into `.cache/otlpsink/<hash of its
sources>/` (about 30 s on a clean cache, modules under `.cache/go`); later runs start
the binary without Go or the network.

    with OtlpSink() as sink:
        ...  # SINERGI_OTLP_ENDPOINT=sink.endpoint
        sink.spans()  # every span received so far, flattened
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.runtime.jvm import CACHE

SOURCES = Path(__file__).with_name("otel")
GO_CANDIDATES = ("go", "/usr/local/go/bin/go")


def binary() -> Path:
    """The receiver's binary, built when its sources changed (or never were)."""
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "main.go"):
        digest.update((SOURCES / name).read_bytes())
    target = CACHE / "otlpsink" / digest.hexdigest()[:16] / "otlpsink"
    if target.exists():
        return target
    go = next((found for name in GO_CANDIDATES if (found := shutil.which(name))), None)
    if go is None:
        raise RuntimeError("the OTLP test receiver needs Go (https://go.dev/dl/) to be built once")
    env = {
        **os.environ,
        "GOMODCACHE": str(CACHE / "go" / "mod"),
        "GOCACHE": str(CACHE / "go" / "build"),
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    subprocess.run([go, "build", "-trimpath", "-o", str(partial), "."], cwd=SOURCES, env=env, check=True)
    partial.replace(target)  # a build cut short never looks finished
    return target


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as the receiver got it (OTLP JSON), with its service's name."""

    service: str
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    attributes: dict[str, Any]
    links: tuple[tuple[str, str], ...]  # (trace id, span id) of each link


class OtlpSink:
    def __init__(self, work_dir: Path | None = None) -> None:
        self._work = Path(tempfile.mkdtemp(prefix="otlpsink-", dir=work_dir))
        self.path = self._work / "spans.jsonl"
        self._proc: subprocess.Popen[str] | None = None
        self.endpoint = ""

    def __enter__(self) -> OtlpSink:
        self._proc = subprocess.Popen(
            [str(binary()), "-listen", "127.0.0.1:0", "-out", str(self.path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self._proc.stdout is not None
        address = self._proc.stdout.readline().strip()  # printed once it listens
        if not address:
            self.__exit__(None, None, None)
            raise RuntimeError("the OTLP receiver did not start")
        self.endpoint = f"http://{address}"
        return self

    def __exit__(self, *_: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(10)
        shutil.rmtree(self._work, ignore_errors=True)

    def spans(self) -> list[ReceivedSpan]:
        if not self.path.exists():
            return []
        found: list[ReceivedSpan] = []
        for line in self.path.read_text().splitlines():
            found.extend(_spans_of(line))
        return found


def _spans_of(line: str) -> list[ReceivedSpan]:
    found = []
    for resource_spans in json.loads(line).get("resourceSpans", []):
        resource = _attributes(resource_spans.get("resource", {}).get("attributes", []))
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                found.append(
                    ReceivedSpan(
                        service=str(resource.get("service.name", "")),
                        trace_id=span["traceId"],
                        span_id=span["spanId"],
                        parent_span_id=span.get("parentSpanId", ""),
                        name=span["name"],
                        kind=int(span.get("kind", 0)),
                        attributes=_attributes(span.get("attributes", [])),
                        links=tuple((link["traceId"], link["spanId"]) for link in span.get("links", [])),
                    )
                )
    return found


def _attributes(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    return {pair["key"]: _value(pair.get("value", {})) for pair in pairs}


def _value(value: dict[str, Any]) -> Any:
    """An OTLP JSON AnyValue as Python (integers arrive as strings, arrays as lists)."""
    if "arrayValue" in value:
        return [_value(v) for v in value["arrayValue"].get("values", [])]
    for kind in ("stringValue", "boolValue", "doubleValue"):
        if kind in value:
            return value[kind]
    if "intValue" in value:
        return int(value["intValue"])
    return None


if __name__ == "__main__":
    print(binary())
