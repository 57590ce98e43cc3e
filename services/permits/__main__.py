"""`python -m services.permits [serve|migrate|republish|replay-dead-letters]`."""

from services.permits.app import PermitsSettings, build
from shared.kit.cli import main

if __name__ == "__main__":
    main(build, PermitsSettings)
