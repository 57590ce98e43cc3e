# Sinergi — the two set-up commands are `make run` and `make test`; both install first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
UV := $(VENV)/bin/uv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.synced

.PHONY: bench bench-quick run test test-fast lint format docs schemas token tail install clean

# Create the virtual environment, bootstrap uv into it, then install exactly what uv.lock
# pins (uv itself is pinned there too).
$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv

$(STAMP): $(UV) pyproject.toml uv.lock
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --quiet
	touch $(STAMP)

install: $(STAMP)

## make run: start the whole system (embedded broker + PostgreSQL unless configured)
run: install
	$(PY) -m shared.runtime.run

## make test: the whole suite against real components
test: install
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest tests/unit services -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## make schemas: regenerate JSON Schemas of every event; make docs: AsyncAPI per service
schemas: install
	$(PY) -m shared.schemas.generate --json-schema

docs: install
	$(PY) -m shared.schemas.generate --json-schema --asyncapi

## make token ROLE=coordinator [OPD=DPUPR]: print an officer bearer token
ROLE ?= admin
token: install
	@$(PY) -m shared.kit.auth --role $(ROLE) $(if $(OPD),--opd $(OPD))

## make bench: throughput, latency and memory (about 10 minutes); bench-quick: about 1 minute
bench: install
	$(PY) -m bench.run

bench-quick: install
	$(PY) -m bench.run --quick

## make tail TOPIC=complaints.events: print a topic's CloudEvents as they arrive
TOPIC ?= complaints.events
tail: install
	@$(PY) -m shared.runtime.tail $(TOPIC)

clean:
	rm -rf .run .pytest_cache .ruff_cache

## make up / make down / make logs: the docker-compose deployment (docs/operations.md).
## make up CLUSTER=1 SCALE="complaints=3 notifications=3": three Kafka brokers, scaled services.
## make logs SERVICE=complaints: follow one service's logs (all when SERVICE is empty).
COMPOSE_FILES := -f deploy/docker-compose.yml $(if $(CLUSTER),-f deploy/docker-compose.cluster.yml)
COMPOSE ?= docker compose $(COMPOSE_FILES) --env-file deploy/.env
SERVICE ?=
SCALE ?=

.PHONY: up down logs

up:
	@test -f deploy/.env || { echo "deploy/.env is missing: cp deploy/.env.example deploy/.env, then fill in the secrets (docs/operations.md)"; exit 1; }
	$(COMPOSE) up -d --build --remove-orphans $(foreach s,$(SCALE),--scale $(s))
	$(COMPOSE) ps

down:
	$(COMPOSE) down

logs:
	$(COMPOSE) logs -f --tail=200 $(SERVICE)
