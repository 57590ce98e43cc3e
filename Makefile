# Sinergi — the two set-up commands are `make run` and `make test`; both install first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
UV := $(VENV)/bin/uv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.synced

.PHONY: bench bench-quick browser-deps otlp-sink system-deps idp run test test-faults test-faults-kafka test-faults-tansu test-fast test-mutations lint format docs schemas slo-rules token tail install clean

# Create the virtual environment, bootstrap uv into it, then install exactly what uv.lock
# pins (uv itself is pinned there too).
$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv

$(STAMP): $(UV) pyproject.toml uv.lock
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --quiet
	touch $(STAMP)

install: $(STAMP)

# System programs some tests drive: Chromium (the dashboard and the portal in a real
# browser), npm (axe-core for their accessibility checks), Prometheus with promtool and
# nginx (the deployment checks: rules, the edge proxy).
# Debian packages; installed when missing and we are root, otherwise the command to run
# is printed. (Keycloak and Apache Kafka come from Maven Central: see
# shared/runtime/maven/.)
SYSTEM_PROGRAMS := /usr/bin/chromium /usr/bin/npm /usr/bin/promtool /usr/bin/prometheus /usr/sbin/nginx
system-deps:
	@missing=""; for p in $(SYSTEM_PROGRAMS); do [ -x $$p ] || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium, npm, prometheus and nginx (Debian packages) for the browser and deployment tests"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium npm prometheus nginx-light >/dev/null && \
	    (pkill -x prometheus || true) && (pkill -x nginx || true); \
	  else \
	    echo "missing:$$missing — run: sudo apt-get install chromium npm prometheus nginx-light"; exit 1; \
	  fi; \
	fi

# axe-core for the browser tests' accessibility checks, exactly as
# tests/browser/axe/package-lock.json pins it, into its ignored node_modules/.
AXE := tests/browser/axe/node_modules/axe-core/axe.min.js
$(AXE): tests/browser/axe/package.json tests/browser/axe/package-lock.json
	npm ci --prefix tests/browser/axe --no-audit --no-fund --loglevel=error
	touch $(AXE)

browser-deps: $(AXE)

# The tests' OTLP trace receiver (shared/runtime/otel: Go, the OpenTelemetry Collector's
# pdata module), built once into .cache/otlpsink (about 40 s of CPU on a clean cache),
# before the suite so the build does not count against a test's time limit.
otlp-sink: install
	$(PY) -m shared.runtime.otlp_sink

## make run: start the whole system (embedded broker + PostgreSQL unless configured)
run: install
	$(PY) -m shared.runtime.run

## make test: the whole suite against real components, on Apache Kafka (KRaft, from its
## jars: the production engine, idempotent producer), then one session on the embedded
## Tansu broker that `make run` starts by default: a smoke set of what its quirks touch
## (producer without idempotence, end offsets, fetch waits: docs/reliability.md) and, last,
## the fault test of its worst one, a restart that loses every topic, record and offset
## (refilled from the outboxes). One session: one broker, one PostgreSQL, one start.
TANSU_SMOKE := tests/unit/test_embedded_runtime.py tests/integration/test_outbox_relay.py \
	tests/integration/test_kit_consumer.py tests/integration/test_complaints_service.py \
	tests/integration/test_integration_view.py tests/faults/test_zz_broker_restart.py
test: install system-deps browser-deps otlp-sink
	SINERGI_EMBEDDED_BROKER=kafka $(PY) -m pytest
	SINERGI_EMBEDDED_BROKER=tansu $(PY) -m pytest -p no:cacheprovider $(TANSU_SMOKE)

## make test-faults: fault and load tests (broker outage and restart, killed consumers,
## poison messages, 60 s of sustained load) on Apache Kafka, one KRaft node, as CI runs
## them; about 5 minutes (9 on a busy shared machine; docs/reliability.md). The three-broker
## cluster (test_kafka_cluster.py, about 5 minutes more) stays outside CI for its time:
## `make test-faults-kafka`
FAULTS_ONE_BROKER := tests/faults -p no:cacheprovider --ignore=tests/faults/test_kafka_cluster.py
test-faults: install
	SINERGI_EMBEDDED_BROKER=kafka $(PY) -m pytest $(FAULTS_ONE_BROKER)

## make test-faults-kafka: the whole fault folder on Apache Kafka, the three-broker
## cluster set up as deploy/docker-compose.cluster.yml included (a leader killed, two
## brokers stopped, a rebalance); about 13–16 minutes on a shared 2-core machine
test-faults-kafka: install
	SINERGI_EMBEDDED_BROKER=kafka $(PY) -m pytest tests/faults -p no:cacheprovider

## make test-faults-tansu: the fault suite on the embedded Tansu broker (about 5 minutes;
## not in CI: `make test` runs its broker-restart test on Tansu)
test-faults-tansu: install
	SINERGI_EMBEDDED_BROKER=tansu $(PY) -m pytest $(FAULTS_ONE_BROKER)

## make test-mutations: break each documented guarantee on purpose in a copy of the tree
## and check its tests fail (tests/mutations/catalogue.py; two at once, each in its own
## copy; about 3 minutes)
test-mutations: install
	$(PY) -m tests.mutations --jobs 2

test-fast: install
	$(PY) -m pytest tests/unit services -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## make schemas: regenerate JSON Schemas of every event; make docs: AsyncAPI per service
schemas: install
	$(PY) -m shared.schemas.generate --json-schema

docs: install
	$(PY) -m shared.schemas.generate --json-schema --asyncapi

## make slo-rules: deploy/prometheus/slo_rules.yml from the SLOs declared in slos.yml
slo-rules: install
	$(PY) -m shared.runtime.slo

## make idp: the development identity provider (Keycloak with the deployment's realm on
## 127.0.0.1:8180, demo officers); then: SINERGI_OIDC_ISSUER=http://127.0.0.1:8180/realms/sinergi make run
idp: install
	$(PY) -m shared.runtime.keycloak serve

## make token ROLE=coordinator [OPD=DPUPR] [FACILITY=RSUD-TJITRO]: print a development officer token
ROLE ?= admin
token: install
	@$(PY) -m shared.kit.auth --role $(ROLE) $(if $(OPD),--opd $(OPD)) $(if $(FACILITY),--facility $(FACILITY))

## make bench: throughput, latency and memory, Tansu and Apache Kafka side by side, the
## booking-window rush and overload (under 10 minutes); bench-quick: a few minutes
bench: install
	$(PY) -m bench.run $(if $(PROFILE),--profile)

bench-quick: install
	$(PY) -m bench.run --quick $(if $(PROFILE),--profile)

## make tail TOPIC=complaints.events: print a topic's CloudEvents as they arrive
TOPIC ?= complaints.events
tail: install
	@$(PY) -m shared.runtime.tail $(TOPIC)

clean:
	rm -rf .run .pytest_cache .ruff_cache

## make up / make down / make logs: the docker-compose deployment (docs/operations.md).
## make up CLUSTER=1 SCALE="complaints=3 notifications=3": three Kafka brokers, scaled services.
## make logs SERVICE=complaints: follow one service's logs (all when SERVICE is empty).
## The regency's own changes (mounted rules, masterplan, relay) go in deploy/docker-compose.override.yml.
COMPOSE_FILES := -f deploy/docker-compose.yml $(if $(CLUSTER),-f deploy/docker-compose.cluster.yml) \
	$(if $(wildcard deploy/docker-compose.override.yml),-f deploy/docker-compose.override.yml)
COMPOSE ?= docker compose $(COMPOSE_FILES) --env-file deploy/.env
SERVICE ?=
SCALE ?=

.PHONY: up down logs

up:
	@test -f deploy/.env || { echo "deploy/.env is missing: cp deploy/.env.example deploy/.env, then fill in the secrets (docs/operations.md)"; exit 1; }
	SINERGI_COMMIT=$$(git rev-parse HEAD 2>/dev/null || echo unknown) \
		$(COMPOSE) up -d --build --remove-orphans $(foreach s,$(SCALE),--scale $(s))
	$(COMPOSE) ps

down:
	$(COMPOSE) down

logs:
	$(COMPOSE) logs -f --tail=200 $(SERVICE)
