"""`python -m services.health [serve|migrate|republish|replay-dead-letters]`."""

from services.health.app import HealthSettings, build
from shared.kit.cli import main

if __name__ == "__main__":
    main(build, HealthSettings)
