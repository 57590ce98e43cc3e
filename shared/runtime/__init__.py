"""Infrastructure for running and testing Sinergi without hand-started servers.

``start_infrastructure`` picks explicit servers from the environment, else Docker
(testcontainers), else the embedded Tansu broker and PostgreSQL 18 shipped in Python wheels.
"""

from shared.runtime.embedded import (
    EmbeddedKafka,
    EmbeddedPostgres,
    create_databases,
    create_topics,
    free_port,
)
from shared.runtime.select import (
    Infrastructure,
    database_url_for,
    docker_available,
    start_infrastructure,
)

__all__ = [
    "EmbeddedKafka",
    "EmbeddedPostgres",
    "Infrastructure",
    "create_databases",
    "create_topics",
    "database_url_for",
    "docker_available",
    "free_port",
    "start_infrastructure",
]
