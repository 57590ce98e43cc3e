"""Command line of every service: `python -m services.<name> [command]`.

serve (default)           run the HTTP API, relay, consumers and jobs
migrate                   apply pending migrations and exit
republish --since TIME    mark retained events since TIME for publishing again
                          (after a broker lost its data; consumers deduplicate)
replay-dead-letters       re-deliver the service's dead letters through its consumers

A service adds commands of its own (`Command`), run like `migrate`: with its database
open and migrated, nothing served.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import FastAPI

from shared.kit.admin import parse_since
from shared.kit.app import Service, serve
from shared.kit.consumer import replay_dead_letters
from shared.kit.outbox import republish_since
from shared.kit.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


@dataclass(frozen=True)
class Command:
    """A service's own maintenance command: its help, its arguments, and what it does
    with the service (its use-case context: `service.context`); what it returns is printed."""

    help: str
    run: Callable[[Service, argparse.Namespace], Awaitable[object]]
    arguments: Callable[[argparse.ArgumentParser], Any] = lambda _: None


def main(
    build: Callable[[S], FastAPI], settings_class: type[S], own: Mapping[str, Command] | None = None
) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command")
    for name, command in (own or {}).items():
        command.arguments(commands.add_parser(name, help=command.help))
    commands.add_parser("serve")
    commands.add_parser("migrate")
    republish = commands.add_parser("republish")
    republish.add_argument("--since", required=True, type=parse_since, help="ISO time with timezone")
    republish.add_argument("--topic", default=None)
    commands.add_parser("replay-dead-letters")
    args = parser.parse_args()

    settings = settings_class()
    app = build(settings)
    service: Service = app.state.service
    if args.command in (None, "serve"):
        serve(app, settings)
    elif args.command == "migrate":
        asyncio.run(maintenance(service, lambda: asyncio.sleep(0)))
        print("migrations applied")
    elif args.command == "republish":
        count = asyncio.run(
            maintenance(service, lambda: republish_since(service.pool, args.since, args.topic))
        )
        print(f"{count} events marked for republishing; the running relay publishes them in order")
    elif args.command == "replay-dead-letters":

        async def replay() -> dict[str, int]:
            await service.bus.connect_publisher()
            return {c.name: await replay_dead_letters(c) for c in service.consumers}

        print(asyncio.run(maintenance(service, replay)))
    elif own and args.command in own:
        print(asyncio.run(maintenance(service, lambda: own[args.command].run(service, args))))


async def maintenance(service: Service, action: Callable[[], object]) -> object:
    """Run `action` with the service's database open (migrated) but nothing served."""
    await service.open_database()
    try:
        return await action()  # type: ignore[misc]
    finally:
        await service.bus.stop()
        await service.pool.close()
