"""What the Java servers this runtime starts share (Keycloak, Apache Kafka): where their
artifacts are cached, resolving them from Maven Central with a pom kept in the
repository (shared/runtime/maven/<name>/pom.xml), and the JDK to run them with."""

from __future__ import annotations

import logging
import os
import re
import subprocess
from pathlib import Path

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("SINERGI_CACHE_DIR", ROOT / ".cache"))
POMS = Path(__file__).with_name("maven")


def pom_property(pom: Path, name: str) -> str:
    """The value of `<name>` in the pom's properties (e.g. the version it resolves)."""
    match = re.search(rf"<{re.escape(name)}>([^<]+)</{re.escape(name)}>", pom.read_text())
    if match is None:
        raise RuntimeError(f"{pom} names no {name}")
    return match.group(1)


def resolve(pom: Path, what: str) -> None:
    """Run the pom's `generate-resources` (copy or unpack its artifacts under `CACHE`).
    The Maven repository is kept under `.cache/m2`, so later runs work offline."""
    logger.info("resolving %s from Maven Central", what)
    subprocess.run(
        ["mvn", "-q", "-B", "-f", str(pom), f"-Dmaven.repo.local={CACHE / 'm2'}",
         f"-Dsinergi.cache={CACHE}", "generate-resources"],
        check=True,
    )  # fmt: skip


def java_home(minimum: int) -> Path:
    """A JDK of at least Java `minimum`: JAVA_HOME if it is, else the newest under
    /usr/lib/jvm."""
    candidates = [Path(os.environ["JAVA_HOME"])] if os.environ.get("JAVA_HOME") else []
    jvm = Path("/usr/lib/jvm")
    candidates += sorted(jvm.iterdir(), key=_java_major, reverse=True) if jvm.is_dir() else []
    for home in candidates:
        if (home / "bin" / "java").exists() and _java_major(home) >= minimum:
            return home
    raise RuntimeError(
        f"Java {minimum} or newer is needed; none found in JAVA_HOME or /usr/lib/jvm"
        " (install a newer JDK, e.g. Debian's openjdk-21-jdk-headless or Temurin)"
    )


def _java_major(home: Path) -> int:
    try:
        release = (home / "release").read_text()
    except OSError:
        return 0
    match = re.search(r'JAVA_VERSION="(\d+)', release)
    return int(match.group(1)) if match else 0
