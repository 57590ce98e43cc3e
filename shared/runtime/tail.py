"""`make tail TOPIC=complaints.events`: print a topic's CloudEvents as they arrive.

For operators and developers: the embedded broker speaks only the Kafka protocol to
modern clients, so this is the quickest way to watch events. Reads from the beginning
(`--from-end` for new events only) without joining a consumer group.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

RUN_ENV = Path(__file__).resolve().parents[2] / ".run" / "sinergi.env"


def bootstrap() -> str:
    """The broker address: SINERGI_KAFKA_BOOTSTRAP, else the one `make run` wrote."""
    if os.environ.get("SINERGI_KAFKA_BOOTSTRAP"):
        return os.environ["SINERGI_KAFKA_BOOTSTRAP"]
    if RUN_ENV.exists():
        for line in RUN_ENV.read_text().splitlines():
            if line.startswith("SINERGI_KAFKA_BOOTSTRAP="):
                return line.split("=", 1)[1]
    return "127.0.0.1:9092"


async def tail(topic: str, from_end: bool, follow: bool) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap(), enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            print(f"no topic {topic}", file=sys.stderr)
            return
        consumer.assign(partitions)
        if from_end:
            await consumer.seek_to_end(*partitions)
        else:
            await consumer.seek_to_beginning(*partitions)
        idle = 0
        while follow or idle < 3:
            batch = await consumer.getmany(timeout_ms=1000)
            idle = 0 if batch else idle + 1
            for records in batch.values():
                for r in records:
                    try:
                        value = json.loads(r.value)
                    except (TypeError, ValueError):
                        value = {"raw": (r.value or b"").decode(errors="replace")}
                    headers = {k: v.decode(errors="replace") for k, v in r.headers or ()}
                    out = {"partition": r.partition, "offset": r.offset, "key": (r.key or b"").decode()}
                    print(
                        json.dumps({**out, "headers": headers, "value": value}, ensure_ascii=False),
                        flush=True,
                    )
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("topic", nargs="?", default="complaints.events")
    parser.add_argument("--from-end", action="store_true")
    parser.add_argument("--no-follow", action="store_true", help="exit when caught up")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(tail(args.topic, args.from_end, not args.no_follow))


if __name__ == "__main__":
    main()
