"""`python -m services.integration [command]`.

serve (default)       run the integration view (pages, API, consumer, live feed)
rebuild               rebuild the read models from the topics, then exit
check-masterplan      validate a masterplan file (default: the configured one)
migrate, republish, replay-dead-letters
                      the kit's maintenance commands (shared/kit/cli.py)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from services.integration import handlers
from services.integration.app import IntegrationSettings, build
from services.integration.masterplan import MasterplanError, load_masterplan
from shared.kit.cli import main as kit_main
from shared.kit.cli import maintenance


async def _rebuild(settings: IntegrationSettings) -> dict[str, Any]:
    """Rebuild without serving: database and producer only (dead letters may be
    written), no live subscriber."""
    service = build(settings).state.service

    def progress(applied: int, total: int, rate: float) -> None:
        width = 30
        done = min(width, int(width * applied / total)) if total else width
        bar = "#" * done + "." * (width - done)
        print(f"\r[{bar}] {applied:,}/{total:,} events  {rate:,.0f} events/s", end="", file=sys.stderr)

    async def run() -> dict[str, Any]:
        await service.bus.connect_publisher()
        result = await handlers.rebuild(service.context, progress=progress)
        print(file=sys.stderr)
        return result

    return await maintenance(service, run)  # type: ignore[return-value]


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "serve"
    if command not in ("rebuild", "check-masterplan", "-h", "--help"):
        kit_main(build, IntegrationSettings)  # serve, and the kit's maintenance commands
        return 0
    parser = argparse.ArgumentParser(
        prog="python -m services.integration",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["rebuild", "check-masterplan"])
    parser.add_argument("--masterplan", type=Path, help="masterplan file (check-masterplan)")
    args = parser.parse_args(argv)
    settings = IntegrationSettings()
    if args.command == "check-masterplan":
        path = args.masterplan or settings.masterplan_path
        try:
            plan = load_masterplan(path)
        except MasterplanError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(
            f"{path}: {len(plan.dimensions)} dimensions, {len(plan.programmes)} programmes,"
            f" {len(plan.indicators)} indicators: OK"
        )
        return 0
    print(json.dumps(asyncio.run(_rebuild(settings)), default=str))  # rebuild
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
