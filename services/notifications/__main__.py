"""`python -m services.notifications [serve|migrate|republish|replay-dead-letters]`."""

from services.notifications.app import NotificationsSettings, build
from shared.kit.cli import main

if __name__ == "__main__":
    main(build, NotificationsSettings)
