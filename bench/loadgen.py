"""Open-loop HTTP load generator (run as its own process by the benchmarks).

Request i is due at t0 + i/rate whatever happened to earlier requests, and its latency
is measured from that due time, so a slow server shows up as latency instead of
silently lowering the offered load (no coordinated omission). Latencies go into an
HdrHistogram (microseconds).

    python -m bench.loadgen --url http://127.0.0.1:8003/complaints --rate 500 --duration 10 \
        --body-file body.json --out result.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import aiohttp
from hdrh.histogram import HdrHistogram


async def run(
    url: str,
    rate: float,
    duration: float,
    bodies: list[bytes],
    timeout: float,
    record: str | None = None,
    extra_headers: dict[str, str] | None = None,
    *,
    method: str = "POST",
    per_request_headers: list[dict[str, str]] | None = None,
    details: bool = False,
    retry_for: float | None = None,
) -> dict[str, object]:
    """With `record` (a field of the JSON response, e.g. "tracking_code"), the result also
    holds `answered`: that field's value -> wall-clock time of the 201, for measuring
    what happens after the response (end-to-end latency). `per_request_headers`: request
    i also sends entry i (in turn, as the bodies: one citizen's session each). With
    `details`, `answers` holds every request's [due time from `started_at` (s), status,
    latency (ms), Retry-After or null], `started_at` the wall-clock time of due time 0.
    With `retry_for`, a request answered 503 with Retry-After is sent again that many
    seconds later, as a citizen's phone does, while that is within `retry_for` seconds of
    due time 0: each attempt is an answer (its latency from its own due time), `retries`
    counts them and, with `details`, `finals` holds each request's [due time, final
    status, ms from its first due time to its final answer, attempts]."""
    histogram = HdrHistogram(1, 120_000_000, 3)
    statuses: dict[str, int] = {}
    answered: dict[str, float] = {}
    answers: list[tuple[float, str, float, str | None]] = []
    finals: list[tuple[float, str, float, int]] = []
    retries = 0
    total = int(rate * duration)
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=4000, force_close=False)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    headers = {"content-type": "application/json", **(extra_headers or {})}
    start = loop.time() + 0.1
    started_at = time.time() + 0.1
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:

        async def one(i: int) -> None:
            nonlocal retries
            first = due = start + i / rate
            attempts = 1
            while True:
                key, retry_after = await attempt(i, due)
                wait = float(retry_after) if key == "503" and retry_after else None
                if retry_for is None or wait is None or loop.time() + wait - start > retry_for:
                    break
                due = loop.time() + wait
                await asyncio.sleep(wait)
                attempts += 1
                retries += 1
            if details:
                finals.append((first - start, key, (loop.time() - first) * 1000, attempts))

        async def attempt(i: int, due: float) -> tuple[str, str | None]:
            sent_headers = (
                {**headers, **per_request_headers[i % len(per_request_headers)]}
                if per_request_headers
                else headers
            )
            retry_after = None
            try:
                async with session.request(
                    method, url, data=bodies[i % len(bodies)], headers=sent_headers
                ) as response:
                    content = await response.read()
                    key = str(response.status)
                    retry_after = response.headers.get("Retry-After")
                    if record is not None and response.status == 201:
                        answered[json.loads(content)[record]] = time.time()
            except Exception as exc:
                key = type(exc).__name__
            statuses[key] = statuses.get(key, 0) + 1
            latency = max(1, int((loop.time() - due) * 1_000_000))
            histogram.record_value(latency)
            if details:
                answers.append((due - start, key, latency / 1000, retry_after))
            return key, retry_after

        tasks: list[asyncio.Task[None]] = []
        sent = 0
        while sent < total:
            now = loop.time()
            while sent < total and start + sent / rate <= now:
                tasks.append(asyncio.create_task(one(sent)))
                sent += 1
            await asyncio.sleep(0.0005)
        wall_start = time.perf_counter()
        await asyncio.gather(*tasks)
        drain = time.perf_counter() - wall_start
    ok = statuses.get("201", 0) + statuses.get("200", 0)
    return {
        "rate": rate,
        "duration_s": duration,
        "sent": total,
        "ok": ok,
        "errors": total - ok,
        "statuses": statuses,
        "achieved_rps": ok / (duration + drain),
        "p50_ms": histogram.get_value_at_percentile(50) / 1000,
        "p90_ms": histogram.get_value_at_percentile(90) / 1000,
        "p99_ms": histogram.get_value_at_percentile(99) / 1000,
        "p999_ms": histogram.get_value_at_percentile(99.9) / 1000,
        "max_ms": histogram.get_max_value() / 1000,
        **({"answered": answered} if record is not None else {}),
        **({"answers": sorted(answers), "started_at": started_at} if details else {}),
        **({"retries": retries} if retry_for is not None else {}),
        **({"finals": sorted(finals)} if retry_for is not None and details else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument(
        "--body-file",
        type=Path,
        required=True,
        help="a JSON body, or a JSON list of bodies sent in turn (e.g. one per patient)",
    )
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--record", help="JSON field of 201 responses to record with their time")
    parser.add_argument(
        "--header", action="append", default=[], help="'Name: value' sent with every request (a session)"
    )
    parser.add_argument("--method", default="POST", help="GET: the body file is not sent")
    parser.add_argument(
        "--headers-file", type=Path, help="a JSON list of header objects, request i sending entry i in turn"
    )
    parser.add_argument("--details", action="store_true", help="every request's status, latency, Retry-After")
    parser.add_argument(
        "--retry-for",
        type=float,
        help="send a 503 with Retry-After again, within this many seconds of the start",
    )
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    loaded = json.loads(args.body_file.read_bytes())
    bodies = [json.dumps(b).encode() for b in (loaded if isinstance(loaded, list) else [loaded])]
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {name.strip(): value.strip() for name, value in headers.items()}
    if args.method == "GET":
        bodies = [b""]
    per_request = json.loads(args.headers_file.read_bytes()) if args.headers_file else None
    result = asyncio.run(
        run(args.url, args.rate, args.duration, bodies, args.timeout, args.record, headers,
            method=args.method, per_request_headers=per_request, details=args.details,
            retry_for=args.retry_for)
    )  # fmt: skip
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
