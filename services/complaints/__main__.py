"""`python -m services.complaints`: start the complaints service."""

from services.complaints.app import ComplaintsSettings, build
from shared.kit.app import serve

if __name__ == "__main__":
    settings = ComplaintsSettings()
    serve(build(settings), settings)
