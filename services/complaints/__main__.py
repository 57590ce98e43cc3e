"""`python -m services.complaints [serve|migrate|republish|replay-dead-letters]`."""

from services.complaints.app import ComplaintsSettings, build
from shared.kit.cli import main

if __name__ == "__main__":
    main(build, ComplaintsSettings)
