"""The compose files are valid against the Compose Specification's own JSON Schema
(vendored by check-jsonschema, so this works offline)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources

import jsonschema

from tests.deploy.helpers import merged_compose
from tests.harness import repo_root

DEPLOY = repo_root() / "deploy"


def test_compose_file_is_valid_against_the_compose_spec() -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "check_jsonschema",
            "--builtin-schema", "vendor.compose-spec",
            str(DEPLOY / "docker-compose.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_cluster_profile_merged_is_valid_against_the_compose_spec() -> None:
    # The cluster file is an override using Compose's `!reset` tag, which a plain YAML
    # parser does not know: validate what Compose would run (base + override merged).
    schema = json.loads(
        resources.files("check_jsonschema").joinpath("builtin_schemas/vendor/compose-spec.json").read_text()
    )
    merged = merged_compose(DEPLOY / "docker-compose.yml", DEPLOY / "docker-compose.cluster.yml")
    jsonschema.validate(merged, schema)
