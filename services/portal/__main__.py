"""`python -m services.portal [serve|migrate]`."""

from services.portal.app import PortalSettings, build
from shared.kit.cli import main

if __name__ == "__main__":
    main(build, PortalSettings)
