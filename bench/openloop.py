"""The open-loop generator (bench/loadgen.py) run as its own process, and percentiles of
latencies measured here."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.settings import ROOT


async def open_loop(
    url: str,
    rate: int,
    seconds: float,
    body: dict[str, Any] | list[dict[str, Any]],
    record: str | None = None,
    headers: dict[str, str] | None = None,
    *,
    method: str = "POST",
    per_request_headers: list[dict[str, str]] | None = None,
    details: bool = False,
    retry_for: float | None = None,
) -> dict[str, Any]:
    """Run bench.loadgen as its own process (its CPU is not this process's); the
    keywords are its options of the same names."""
    with tempfile.TemporaryDirectory() as tmp:
        body_file, out = Path(tmp) / "body.json", Path(tmp) / "out.json"
        body_file.write_text(json.dumps(body))
        extra = ["--record", record] if record else []
        extra += [arg for name, value in (headers or {}).items() for arg in ("--header", f"{name}: {value}")]
        extra += ["--method", method] + (["--details"] if details else [])
        extra += ["--retry-for", str(retry_for)] if retry_for is not None else []
        if per_request_headers:
            headers_file = Path(tmp) / "headers.json"
            headers_file.write_text(json.dumps(per_request_headers))
            extra += ["--headers-file", str(headers_file)]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.loadgen", "--url", url, "--rate", str(rate),
            "--duration", str(seconds), "--body-file", str(body_file), "--out", str(out), *extra, cwd=ROOT,
        )  # fmt: skip
        await proc.wait()
        return json.loads(out.read_text())


def percentiles(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def at(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    return {"n": len(ordered), "p50_ms": at(50), "p95_ms": at(95), "p99_ms": at(99), "max_ms": ordered[-1]}
