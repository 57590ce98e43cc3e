# One image for every Sinergi service. The service is chosen by the command:
#   docker run sinergi complaints                 # serve (the default command of a service)
#   docker run sinergi notifications replay-dead-letters
#   docker run sinergi complaints republish --since 2026-11-28T08:00:00+07:00
# (deploy/docker-compose.yml sets `command: ["<service>"]` for each service.)

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the locked runtime dependencies, nothing from the dev or embedded groups -------------
FROM ${PYTHON_IMAGE} AS build

# uv pinned to the version uv.lock was written with.
ARG UV_VERSION=0.13.9
RUN python -m pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"

ENV UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy

WORKDIR /app
COPY pyproject.toml uv.lock ./
# --frozen: exactly uv.lock, never re-resolved. The embedded broker and PostgreSQL
# (group "embedded") and the test tools (group "dev") stay out of the image.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-group embedded --no-install-project

# --- runtime: slim Python, the virtual environment, the code, a non-root user ----------------------
FROM ${PYTHON_IMAGE} AS runtime

# tzdata: the working-day calendar and NIK rules use Asia/Jakarta (zoneinfo needs the system db).
RUN apt-get update \
    && apt-get install -y --no-install-recommends tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 sinergi \
    && useradd --system --uid 10001 --gid sinergi --home-dir /app --shell /usr/sbin/nologin sinergi \
    && install -d -o sinergi -g sinergi -m 0750 /var/lib/sinergi/attachments

ENV PATH=/app/.venv/bin:$PATH \
    VIRTUAL_ENV=/app/.venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /app
COPY --from=build /app/.venv /app/.venv
# pyproject.toml: the version every service reports in sinergi_build_info.
COPY pyproject.toml /app/
COPY shared/ /app/shared/
COPY services/ /app/services/
COPY deploy/docker/entrypoint.sh deploy/docker/healthcheck.py /usr/local/bin/
RUN chmod 0755 /usr/local/bin/entrypoint.sh \
    && python -m compileall -q /app/shared /app/services

# The source commit, reported in sinergi_build_info{commit}: `make up` passes the
# checkout's HEAD (docker build --build-arg SINERGI_COMMIT=$(git rev-parse HEAD)).
ARG SINERGI_COMMIT=unknown
ENV SINERGI_COMMIT=${SINERGI_COMMIT}

USER sinergi:sinergi

EXPOSE 8000 8001 8002 8003 8004 8005

# Liveness of whichever service runs in the container: its /health on its port
# (<NAME>_PORT, else the port in shared/runtime/topology.py).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/usr/local/bin/healthcheck.py"]

# `<service> [command ...]` runs `python -m services.<service> [command ...]`.
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
CMD ["--help"]
