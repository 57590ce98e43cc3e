"""deploy/docker-compose.yml (and the cluster override) against the code: topology,
each service's settings class, production mode, the secrets, the topics, the volumes,
the edge proxy, .env.example."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from shared.kit.auth import OidcTokens, token_verifier
from shared.kit.bus import producer_options
from shared.kit.settings import PlatformSettings, ServiceSettings, require_production_keys
from shared.runtime.apache_kafka import broker_properties, kafka_version
from shared.runtime.select import IDEMPOTENT_PRODUCER
from shared.runtime.topology import (
    DOMAIN_PARTITIONS,
    SERVICES,
    SINGLE_BROKER,
    THREE_BROKERS,
    Replication,
    ServiceInfo,
    retention_ms,
    segment_ms,
    topics,
)
from tests.deploy.helpers import (
    CLUSTER,
    COMPOSE,
    DATABASES,
    DEPLOY,
    ENV_EXAMPLE,
    IDENTITY_DATABASES,
    OPERATIONS,
    commented_env_names,
    effective_settings_class,
    env_names,
    env_prefix,
    environment,
    interpolate,
    load_yaml,
    merged_compose,
    platform_env_names,
    read_env_file,
    secret_fields,
    variable_uses,
)

BY_NAME = {s.name: s for s in SERVICES}
SERVICE_IDS = [s.name for s in SERVICES]
REQUIRED_PORTAL_URL = "${SINERGI_PORTAL_URL:?set SINERGI_PORTAL_URL in deploy/.env}"
ISSUER = f"{REQUIRED_PORTAL_URL}/auth/realms/sinergi"
DISCOVERY_URL = "http://keycloak:8080/auth/realms/sinergi"
# Platform secrets production does not use: officers' tokens come from the identity
# provider, and shared/kit/settings.py's production check ignores the shared secret.
UNUSED_IN_PRODUCTION = {"auth_secret"}
# Platform secrets of an option the operator chooses: passed through to the services that
# use them only when set (the attachments' S3-compatible bucket).
OPTIONAL = {"attachments_s3_secret_access_key"}


def _operator_env(compose: dict[str, Any]) -> dict[str, str]:
    """What an operator's deploy/.env holds: .env.example's values and every required
    variable filled in."""
    operator_env = {k: v for k, v in read_env_file(ENV_EXAMPLE).items() if v}
    operator_env.update(
        {use.name: f"secret-{use.name.lower()}" for use in variable_uses(compose) if use.required}
    )
    # Fernet keys (32 bytes, url-safe base64), none of them a development default.
    for name in ("COMPLAINTS", "PERMITS", "HEALTH", "NOTIFICATIONS"):
        operator_env[f"{name}_{'CONTACT' if name == 'NOTIFICATIONS' else 'MASTER'}_KEY"] = (
            base64.urlsafe_b64encode(f"deploy-test-{name.lower()}-key".ljust(32, "!").encode()).decode()
        )
    operator_env["SINERGI_CITIZEN_REF_KEY"] = "c" * 64
    operator_env["SINERGI_PORTAL_URL"] = "https://sinergi.purworejokab.go.id"
    return operator_env


def _settings_in_container(
    model: dict[str, Any], info: ServiceInfo, monkeypatch: pytest.MonkeyPatch
) -> ServiceSettings:
    """The service's settings as its container loads them: its compose environment,
    interpolated with an operator's deploy/.env, and nothing from this process's."""
    operator_env = _operator_env(model)
    for key in list(os.environ):
        if key.startswith(("SINERGI_", env_prefix(info))):
            monkeypatch.delenv(key)
    for key, value in environment(model["services"][info.name]).items():
        resolved = interpolate(value, operator_env) if value is not None else operator_env.get(key)
        if resolved is not None:
            monkeypatch.setenv(key, resolved)
    return effective_settings_class(info)()


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return merged_compose(COMPOSE)


@pytest.fixture(scope="module")
def cluster() -> dict[str, Any]:
    return merged_compose(COMPOSE, CLUSTER)


def test_compose_files_parse() -> None:
    base = load_yaml(COMPOSE)
    override = load_yaml(CLUSTER)
    assert isinstance(base["services"], dict) and isinstance(override["services"], dict)
    # Override-only services are complete; the others only change base services.
    for name, service in override["services"].items():
        assert name in base["services"] or "image" in service, name


def test_every_service_of_the_topology_and_nothing_unknown(compose: dict[str, Any]) -> None:
    services = compose["services"]
    sinergi = {n for n, s in services.items() if s.get("command") and s["command"][0] in BY_NAME}
    assert sinergi == set(BY_NAME), "compose runs exactly the services of shared/runtime/topology.py"
    for infra in (
        "kafka",
        "kafka-init",
        "postgres",
        "keycloak",
        "edge",
        "prometheus",
        "grafana",
        "jaeger",
        "mailpit",
    ):
        assert infra in services, infra


@pytest.mark.parametrize("name", SERVICE_IDS)
def test_service_definition(compose: dict[str, Any], name: str) -> None:
    info = BY_NAME[name]
    service = compose["services"][name]
    assert service["command"] == [name]
    assert service["image"].startswith("${IMAGE_SINERGI:-")
    assert service["build"]["context"] == ".." and service["build"]["dockerfile"] == "Dockerfile"
    assert service["restart"] in ("unless-stopped", "always")
    assert "container_name" not in service
    # Liveness on the service's own port (Python's urllib: the image has no curl).
    test = " ".join(service["healthcheck"]["test"])
    assert f"http://127.0.0.1:{info.port}/health" in test and "urllib" in test
    # Published by the edge proxy only.
    assert not service.get("ports")
    depends = service["depends_on"]
    assert depends["kafka"]["condition"] == "service_healthy"
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["kafka-init"]["condition"] == "service_completed_successfully"
    assert depends["keycloak"]["condition"] == "service_healthy"
    for dependency in depends:
        assert dependency in compose["services"], dependency

    env = environment(service)
    prefix = env_prefix(info)
    assert env["SINERGI_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env["SINERGI_KAFKA_IDEMPOTENCE"] == "true"
    assert env[f"{prefix}HOST"] == "0.0.0.0"
    assert env[f"{prefix}PORT"] == str(info.port)
    # Production: no development keys, no shared-secret tokens; the realm's public issuer,
    # its discovery document and keys fetched inside the network.
    assert env["SINERGI_ENVIRONMENT"] == "production"
    assert env["SINERGI_OIDC_ISSUER"] == ISSUER
    assert env["SINERGI_OIDC_DISCOVERY_URL"] == DISCOVERY_URL
    assert "SINERGI_AUTH_SECRET" not in env
    password = f"{info.database.upper()}_DB_PASSWORD"
    assert env[f"{prefix}DATABASE_URL"] == (
        f"postgresql://{info.database}:${{{password}:?set {password} in deploy/.env}}"
        f"@postgres:5432/{info.database}"
    )


@pytest.mark.parametrize("files", ["base", "cluster"])
@pytest.mark.parametrize("name", SERVICE_IDS)
def test_every_variable_is_a_settings_field(
    compose: dict[str, Any], cluster: dict[str, Any], name: str, files: str
) -> None:
    """Each variable compose sets for a service is read by it: a PlatformSettings field
    (SINERGI_*) or a field of the service's settings class (<NAME>_*)."""
    info = BY_NAME[name]
    model = compose if files == "base" else cluster
    settings = effective_settings_class(info)
    known = platform_env_names() | env_names(settings)
    unknown = set(environment(model["services"][name])) - set(known)
    assert not unknown, f"{name}: not settings of {settings.__name__} or PlatformSettings: {sorted(unknown)}"


@pytest.mark.parametrize("name", SERVICE_IDS)
async def test_settings_load_from_the_compose_environment(
    compose: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interpolated environment (with .env.example's values and filled-in secrets)
    gives the service the settings the deployment means, and they pass the kit's
    production check: the service starts, trusting the realm's issuer only."""
    info = BY_NAME[name]
    operator_env = _operator_env(compose)
    settings = _settings_in_container(compose, info, monkeypatch)
    assert settings.port == info.port
    assert settings.host == "0.0.0.0"
    password = operator_env[f"{info.database.upper()}_DB_PASSWORD"]
    assert settings.database_url == f"postgresql://{info.database}:{password}@postgres:5432/{info.database}"
    platform = settings.platform
    assert platform.kafka_bootstrap == "kafka:9092"
    assert platform.kafka_idempotence is True
    assert platform.region == "33.06"
    assert platform.otlp_endpoint == "http://jaeger:4318" and platform.trace_sample_ratio == 1.0
    for field in secret_fields(PlatformSettings) - UNUSED_IN_PRODUCTION - OPTIONAL:
        value = getattr(platform, field).get_secret_value()
        assert value == operator_env[f"SINERGI_{field.upper()}"], field
    assert platform.environment == "production"
    assert platform.oidc_issuer == "https://sinergi.purworejokab.go.id/auth/realms/sinergi"
    assert platform.oidc_audience == "sinergi"
    assert platform.oidc_discovery_url == DISCOVERY_URL
    require_production_keys(platform)  # raises on a development key or a missing issuer
    verifier = token_verifier(platform)
    try:
        assert isinstance(verifier, OidcTokens)
        assert verifier.issuer == platform.oidc_issuer
    finally:
        await verifier.close()


# A service's secret that is another component's too, set once in deploy/.env: the
# portal signs in to Keycloak as the client whose secret the realm import gets.
SHARED_SECRETS = {"PORTAL_OIDC_CLIENT_SECRET": "SINERGI_OIDC_CLIENT_SECRET"}


@pytest.mark.parametrize("name", SERVICE_IDS)
def test_secrets_only_from_the_env_file(compose: dict[str, Any], name: str) -> None:
    """Required secrets are `${VAR:?...}`; optional ones pass through unset; none has a
    value in the compose file. The development defaults of the keys are never used."""
    info = BY_NAME[name]
    env = environment(compose["services"][name])
    settings = effective_settings_class(info)
    by_env = {**{v: ("platform", f) for v, f in platform_env_names().items()}}
    by_env.update({v: ("service", f) for v, f in env_names(settings).items()})
    platform_secrets = secret_fields(PlatformSettings)
    service_secrets = secret_fields(settings)
    for field in platform_secrets - UNUSED_IN_PRODUCTION - OPTIONAL:
        var = f"SINERGI_{field.upper()}"
        assert env.get(var) == f"${{{var}:?set {var} in deploy/.env}}", var
    for field in UNUSED_IN_PRODUCTION:
        assert f"SINERGI_{field.upper()}" not in env, field
    for var, value in env.items():
        owner, field = by_env[var]
        secret = field in (platform_secrets if owner == "platform" else service_secrets)
        if not secret:
            continue
        default = (PlatformSettings if owner == "platform" else settings).model_fields[field].default
        if var in SHARED_SECRETS:
            shared = SHARED_SECRETS[var]
            assert value == f"${{{shared}:?set {shared} in deploy/.env}}", var
        elif default is None:
            assert value is None or re.fullmatch(rf"\$\{{{var}(:\?[^}}]*)?\}}", value), var
        else:
            assert value == f"${{{var}:?set {var} in deploy/.env}}", var


def test_no_secret_values_in_compose_files() -> None:
    secretish = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$")
    for path in (COMPOSE, CLUSTER):
        model = merged_compose(path)
        for name, service in model["services"].items():
            for var, value in environment(service).items():
                if secretish.search(var) and value is not None:
                    assert value.startswith("${") and ":?" in value, f"{path.name} {name} {var}={value}"
    example = read_env_file(ENV_EXAMPLE)
    for use in variable_uses(merged_compose(COMPOSE)):
        if use.required:
            assert example.get(use.name, "") == "", f"{use.name} has a value in .env.example"


# `create <topic> <partitions> "$$<retention variable>" ["$$<segment variable>"]` in
# kafka-init's script.
_CREATE = re.compile(r'^\s*create\s+(\S+)\s+(\d+)\s+"\$\$([A-Z_]+)"(?:\s+"\$\$([A-Z_]+)")?', re.MULTILINE)


@pytest.mark.parametrize(("files", "replication"), [("base", SINGLE_BROKER), ("cluster", THREE_BROKERS)])
def test_topic_init_creates_the_topology_topics_with_its_settings(
    compose: dict[str, Any], cluster: dict[str, Any], files: str, replication: Replication
) -> None:
    """kafka-init creates exactly shared/runtime/topology.py's topics, each with its
    partitions, its retention and segment roll (compose's default and .env.example's
    alike) and the replication of the deployment (one broker, or three)."""
    init = (compose if files == "base" else cluster)["services"]["kafka-init"]
    assert init["restart"] == "no"
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert init["entrypoint"][0] == "/bin/bash"
    script = "\n".join(init["command"])
    found = _CREATE.findall(script)
    created = {topic: (int(partitions), variable) for topic, partitions, variable, _ in found}
    segments = {topic: variable or None for topic, _, _, variable in found}
    assert {topic: partitions for topic, (partitions, _) in created.items()} == topics()
    assert "kafka-topics.sh" in script and "--if-not-exists" in script
    assert '--replication-factor "$$REPLICATION_FACTOR"' in script
    assert 'min.insync.replicas="$$MIN_INSYNC_REPLICAS"' in script
    assert 'retention.ms="$$3"' in script
    assert '$${4:+--config segment.ms="$$4"}' in script
    env = environment(init)
    for operator_env in ({}, read_env_file(ENV_EXAMPLE)):
        value = {name: interpolate(v, operator_env) for name, v in env.items() if v is not None}
        for topic, (_, variable) in created.items():
            assert int(value[variable]) == retention_ms(topic), (topic, operator_env)
            segment = segments[topic]
            assert (int(value[segment]) if segment else None) == segment_ms(topic), (topic, operator_env)
        assert int(value["REPLICATION_FACTOR"]) == replication.factor
        assert int(value["MIN_INSYNC_REPLICAS"]) == replication.min_insync
    # Domain topics keep their events unless the operator says otherwise in deploy/.env.
    assert env["DOMAIN_RETENTION_MS"] == "${DOMAIN_TOPIC_RETENTION_MS:--1}"


# Where the embedded broker and compose's broker differ on purpose: addresses and paths.
_ADDRESSES = {"listeners", "advertised.listeners", "controller.quorum.voters", "log.dirs"}


def test_single_broker_is_configured_as_the_tests_broker(compose: dict[str, Any], tmp_path: Path) -> None:
    """Compose's broker (KAFKA_* variables) and the Apache Kafka the tests start from its
    jars (shared/runtime/apache_kafka.py) agree on every setting both name, and compose's
    defaults for new topics are topology.py's."""
    env = environment(compose["services"]["kafka"])
    deployed = {
        name.removeprefix("KAFKA_").lower().replace("_", "."): value
        for name, value in env.items()
        if name.startswith("KAFKA_")
    }
    tested = dict(
        line.split("=", 1)
        for line in broker_properties(port=9092, controller_port=9093, data_dir=tmp_path).splitlines()
        if line
    )
    shared = (set(deployed) & set(tested)) - _ADDRESSES
    assert {"auto.create.topics.enable", "num.partitions", "offsets.topic.replication.factor"} <= shared
    assert {k: deployed[k] for k in shared} == {k: tested[k] for k in shared}
    assert int(deployed["num.partitions"]) == DOMAIN_PARTITIONS
    assert int(deployed["default.replication.factor"]) == SINGLE_BROKER.factor
    assert int(deployed["min.insync.replicas"]) == SINGLE_BROKER.min_insync


# Every place an operator reads or sets the Kafka image.
_KAFKA_IMAGE = re.compile(r"apache/kafka:([0-9][0-9A-Za-z.-]*)")


def test_the_kafka_image_is_the_version_the_tests_run() -> None:
    """The image compose deploys (its defaults, .env.example's IMAGE_KAFKA, the table of
    docs/operations.md) is the Apache Kafka of shared/runtime/maven/kafka/pom.xml, which
    the tests start."""
    found = {
        path.name: _KAFKA_IMAGE.findall(path.read_text(encoding="utf-8"))
        for path in (COMPOSE, CLUSTER, ENV_EXAMPLE, OPERATIONS)
    }
    assert found["docker-compose.yml"] and found[".env.example"] and found["operations.md"], found
    for versions in found.values():
        assert set(versions) <= {kafka_version()}, found
    deployed = merged_compose(COMPOSE, CLUSTER)["services"]
    images = [s["image"] for s in deployed.values() if "apache/kafka" in s.get("image", "")]
    assert len(images) == 4  # three brokers and kafka-init
    for image in images:
        for operator_env in ({}, read_env_file(ENV_EXAMPLE)):
            assert interpolate(image, operator_env) == f"apache/kafka:{kafka_version()}"


@pytest.mark.parametrize("files", ["base", "cluster"])
@pytest.mark.parametrize("name", SERVICE_IDS)
def test_services_produce_as_the_tests_on_apache_kafka(
    compose: dict[str, Any], cluster: dict[str, Any], name: str, files: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The producer a service builds from its compose settings is the one the tests build on
    Apache Kafka (shared/runtime/select.py): the idempotent producer, acks=all."""
    model = compose if files == "base" else cluster
    deployed = producer_options(_settings_in_container(model, BY_NAME[name], monkeypatch).platform)
    tested = producer_options(PlatformSettings(kafka_idempotence=IDEMPOTENT_PRODUCER["kafka"]))
    assert deployed == tested
    assert deployed["enable_idempotence"] is True and deployed["acks"] == "all"


def test_postgres_one_database_and_role_per_service(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert re.fullmatch(r"\$\{IMAGE_POSTGRES:-postgres:18[^}]*\}", postgres["image"])
    assert "./postgres/init.sh:/docker-entrypoint-initdb.d/10-sinergi-databases.sh:ro" in postgres["volumes"]
    script = (DEPLOY / "postgres" / "init.sh").read_text()
    listed = re.search(r"^SERVICES=\(([^)]*)\)", script, re.MULTILINE)
    assert listed is not None
    assert listed.group(1).split() == [s.database for s in SERVICES]
    identity = re.search(r"^IDENTITY=\(([^)]*)\)", script, re.MULTILINE)
    assert identity is not None and identity.group(1).split() == IDENTITY_DATABASES
    assert 'for service in "${SERVICES[@]}" "${IDENTITY[@]}"; do' in script
    env = environment(postgres)
    assert env["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in deploy/.env}"
    for database in DATABASES:
        var = f"{database.upper()}_DB_PASSWORD"
        assert env[var] == f"${{{var}:?set {var} in deploy/.env}}"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_named_volumes_for_all_state(compose: dict[str, Any]) -> None:
    mounts = {
        "kafka": "kafka-data:/var/lib/kafka/data",
        "postgres": "postgres-data:/var/lib/postgresql",
        "prometheus": "prometheus-data:/prometheus",
        "grafana": "grafana-data:/var/lib/grafana",
        "mailpit": "mailpit-data:/data",
    }
    for service, mount in mounts.items():
        assert mount in compose["services"][service]["volumes"], service
        assert mount.split(":")[0] in compose["volumes"], mount


def test_observability_wiring(compose: dict[str, Any]) -> None:
    prometheus = compose["services"]["prometheus"]
    assert "./prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    grafana = compose["services"]["grafana"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    assert "./grafana/dashboards:/etc/grafana/dashboards:ro" in grafana["volumes"]
    env = environment(grafana)
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (DEPLOY / "grafana" / "dashboards" / home.rsplit("/", 1)[1]).exists()
    mailpit = compose["services"]["mailpit"]
    assert mailpit["image"].startswith("${IMAGE_MAILPIT:-axllent/mailpit:")
    notifications = environment(compose["services"]["notifications"])
    assert notifications["NOTIFICATIONS_SMTP_HOST"] == "${NOTIFICATIONS_SMTP_HOST:-mailpit}"


def test_tracing_wiring(compose: dict[str, Any]) -> None:
    """Every service sends its spans to the OTLP/HTTP receiver Jaeger's configuration
    opens; Jaeger keeps them where its query API (Grafana's data source) reads them."""
    jaeger = compose["services"]["jaeger"]
    assert jaeger["image"].startswith("${IMAGE_JAEGER:-jaegertracing/jaeger:2.")
    assert "./jaeger/config.yaml:/etc/jaeger/config.yaml:ro" in jaeger["volumes"]
    assert jaeger["command"] == ["--config", "/etc/jaeger/config.yaml"]
    config = load_yaml(DEPLOY / "jaeger" / "config.yaml")
    (pipeline,) = config["service"]["pipelines"].values()
    for kind in ("receivers", "processors", "exporters"):
        assert set(pipeline[kind]) <= set(config[kind]), kind
    assert set(config["service"]["extensions"]) == set(config["extensions"])
    backends = config["extensions"]["jaeger_storage"]["backends"]
    assert config["extensions"]["jaeger_query"]["storage"]["traces"] in backends
    assert config["exporters"]["jaeger_storage_exporter"]["trace_storage"] in backends
    http_port = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].rsplit(":", 1)[1]
    query_port = config["extensions"]["jaeger_query"]["http"]["endpoint"].rsplit(":", 1)[1]
    assert jaeger["ports"] == [f"${{PUBLISH_ADDRESS:-127.0.0.1}}:{query_port}:{query_port}"]
    for name in SERVICE_IDS:
        env = environment(compose["services"][name])
        assert env["SINERGI_OTLP_ENDPOINT"] == f"${{SINERGI_OTLP_ENDPOINT:-http://jaeger:{http_port}}}", name
    datasources = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "jaeger.yml")
    (source,) = datasources["datasources"]
    assert source["type"] == "jaeger" and source["url"] == f"http://jaeger:{query_port}"


def test_env_example_lists_every_variable() -> None:
    example = read_env_file(ENV_EXAMPLE)
    commented = commented_env_names(ENV_EXAMPLE)
    used: set[str] = set()
    passthrough: set[str] = set()
    for path in (COMPOSE, CLUSTER):
        raw = load_yaml(path)
        used |= {use.name for use in variable_uses(raw)}
        for service in merged_compose(path)["services"].values():
            passthrough |= {k for k, v in environment(service).items() if v is None}
    missing = used - set(example)
    assert not missing, f"deploy/.env.example lacks {sorted(missing)}"
    assert not passthrough - set(example) - commented, sorted(passthrough - set(example) - commented)
    # Optional pass-through settings stay commented: an empty value would be "set".
    assert not passthrough & set(example), sorted(passthrough & set(example))
    assert not set(example) - used, f"unused in compose: {sorted(set(example) - used)}"


def test_cluster_override(cluster: dict[str, Any]) -> None:
    services = cluster["services"]
    brokers = {
        name: environment(s)
        for name, s in services.items()
        if "apache/kafka" in s.get("image", "") and "KAFKA_PROCESS_ROLES" in environment(s)
    }
    assert set(brokers) == {"kafka", "kafka-2", "kafka-3"}
    assert sorted(int(env["KAFKA_NODE_ID"]) for env in brokers.values()) == [1, 2, 3]
    for name, env in brokers.items():
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093"
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert env["CLUSTER_ID"] == environment(services["kafka"])["CLUSTER_ID"]
        assert "healthcheck" in services[name]
    volumes = {services[name]["volumes"][0].split(":")[0] for name in brokers}
    assert len(volumes) == 3 and volumes <= set(cluster["volumes"])

    init = services["kafka-init"]
    env = environment(init)
    assert env["REPLICATION_FACTOR"] == "3" and env["MIN_INSYNC_REPLICAS"] == "2"
    assert env["BOOTSTRAP"] == "kafka:9092,kafka-2:9092,kafka-3:9092"
    assert all(init["depends_on"][b]["condition"] == "service_healthy" for b in brokers)

    for service in SERVICES:
        definition = services[service.name]
        # Scalable with --scale: no fixed name, no host port (the edge proxy publishes them).
        assert "container_name" not in definition and not definition.get("ports"), service.name
        env = environment(definition)
        assert env["SINERGI_KAFKA_BOOTSTRAP"] == "kafka:9092,kafka-2:9092,kafka-3:9092"
        # The override adds to the base environment, it does not replace it.
        assert env["SINERGI_ENVIRONMENT"] == "production" and env["SINERGI_OIDC_ISSUER"] == ISSUER
        assert definition["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
        assert definition["depends_on"]["keycloak"]["condition"] == "service_healthy"
    assert services["edge"] == merged_compose(COMPOSE)["services"]["edge"]


@pytest.mark.parametrize("files", ["base", "cluster"])
def test_http_enters_through_the_edge_only(
    compose: dict[str, Any], cluster: dict[str, Any], files: str
) -> None:
    """The edge publishes the services' ports (DESIGN.md §7); no service and not Keycloak
    publish one of their own. Only the operators' tools publish theirs."""
    services = (compose if files == "base" else cluster)["services"]
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == {"edge", "prometheus", "grafana", "jaeger", "mailpit"}
    for name in ("prometheus", "grafana", "jaeger", "mailpit"):
        for port in services[name]["ports"]:
            assert port.startswith("${PUBLISH_ADDRESS:-127.0.0.1}:"), (name, port)
    edge = services["edge"]
    assert edge["ports"] == [f"${{PUBLISH_ADDRESS:-127.0.0.1}}:{s.port}:{s.port}" for s in SERVICES]
    assert "./nginx/edge.conf:/etc/nginx/conf.d/default.conf:ro" in edge["volumes"]
    assert "/healthz" in " ".join(edge["healthcheck"]["test"])
    for dependency in [s.name for s in SERVICES] + ["keycloak"]:
        assert edge["depends_on"][dependency]["condition"] == "service_healthy", dependency
    conf = (DEPLOY / "nginx" / "edge.conf").read_text()
    for service in SERVICES:
        assert f"listen {service.port};" in conf
        assert f"set $upstream http://{service.name}:{service.port};" in conf


def test_env_example_documents_how_to_make_each_secret() -> None:
    """Each secret in .env.example (required and empty) has a comment above it (its own,
    or its group's) saying it is at least 32 random bytes and the command to make them."""
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    required = {use.name for use in variable_uses(merged_compose(COMPOSE)) if use.required}
    secrets = {name for name in required if re.search(r"PASSWORD|SECRET|_KEY$", name)}
    assert {"KEYCLOAK_DB_PASSWORD", "KEYCLOAK_ADMIN_PASSWORD", "SINERGI_OIDC_CLIENT_SECRET"} <= secrets
    commands = ("openssl rand -hex 32", "os.urandom(32)")
    for index, line in enumerate(lines):
        name = line.partition("=")[0]
        if name not in secrets:
            continue
        above = index - 1
        while above >= 0 and not lines[above].startswith("#"):
            above -= 1  # the other variables of the group
        comment = []
        while above >= 0 and lines[above].startswith("#"):
            comment.insert(0, lines[above])
            above -= 1
        text = " ".join(comment)
        assert "32 random bytes" in text, name
        assert any(command in text for command in commands), name
    assert "SINERGI_AUTH_SECRET" not in read_env_file(ENV_EXAMPLE)


def test_dev_defaults_are_not_the_deployment_keys() -> None:
    """`${VAR:?}` makes compose refuse to start without the keys; the kit's development
    defaults exist and must never be what a deployment runs with."""
    defaults = PlatformSettings.model_fields
    for field in secret_fields(PlatformSettings) - OPTIONAL:
        assert isinstance(defaults[field].default, SecretStr)


def test_services_info_is_consistent() -> None:
    for service in SERVICES:
        assert isinstance(service, ServiceInfo) and service.database == service.name
