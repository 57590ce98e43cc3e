"""An S3-compatible object store on loopback: S3Proxy (Apache-2.0) from Maven Central
(`shared/runtime/maven/s3proxy/pom.xml`) serving a local folder through the S3 API, for
the tests that prove the attachments' S3 store (shared/kit/attachments.py `S3Store`), the
production option, against a real S3 server. Its one jar is resolved once into
`.cache/s3proxy/`; a bucket is a folder below the store's data folder."""

from __future__ import annotations

import secrets
import signal
from collections.abc import Callable
from pathlib import Path

from shared.runtime.embedded import ServerProcess, _tcp_accepts
from shared.runtime.jvm import CACHE, java_home, pom_property, resolve

POM = Path(__file__).with_name("maven") / "s3proxy" / "pom.xml"
MINIMUM_JAVA = 17


def s3proxy_jar() -> Path:
    """The server's jar, resolved with Maven on first use."""
    version = pom_property(POM, "s3proxy.version")
    jar = CACHE / "s3proxy" / f"s3proxy-{version}.jar"
    if not jar.exists():
        resolve(POM, f"S3Proxy {version}")
    return jar


class S3Proxy(ServerProcess):
    """S3Proxy over `work_dir`/data with a random access key pair (AWS signature v2 or
    v4); ready once its port accepts connections."""

    label = "S3Proxy"

    def __init__(self, work_dir: Path, port: int | None = None, *, startup_timeout: float = 60.0) -> None:
        self.work_dir = Path(work_dir).absolute()
        super().__init__(port, self.work_dir / "s3proxy.log", startup_timeout)
        self.access_key_id = "sinergi-" + secrets.token_hex(4)
        self.secret_access_key = secrets.token_hex(20)

    def __repr__(self) -> str:
        return f"S3Proxy(port={self._port})"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def create_bucket(self, name: str) -> None:
        """A bucket (S3Proxy's filesystem back end keeps one folder per bucket)."""
        (self.work_dir / "data" / name).mkdir(parents=True, exist_ok=True)

    def objects(self, bucket: str) -> list[str]:
        """The keys the bucket holds (read from the folder, independent of any client)."""
        root = self.work_dir / "data" / bucket
        return (
            sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []
        )

    def _prepare(self) -> Callable[[], None]:
        jar = s3proxy_jar()
        java = java_home(MINIMUM_JAVA) / "bin" / "java"
        (self.work_dir / "data").mkdir(parents=True, exist_ok=True)
        return lambda: self._launch(java, jar)

    def _launch(self, java: Path, jar: Path) -> None:
        config = self.work_dir / "s3proxy.conf"
        config.write_text(
            "\n".join(
                [
                    f"s3proxy.endpoint={self.endpoint}",
                    "s3proxy.authorization=aws-v2-or-v4",
                    f"s3proxy.identity={self.access_key_id}",
                    f"s3proxy.credential={self.secret_access_key}",
                    "jclouds.provider=filesystem",
                    f"jclouds.filesystem.basedir={self.work_dir / 'data'}",
                ]
            )
            + "\n"
        )
        argv = [str(java), "-Xmx256m", "-jar", str(jar), "--properties", str(config)]
        self._serve(argv, log_prefix="sinergi-s3proxy-", death_signal=signal.SIGTERM)

    def _wait_ready(self) -> None:
        if not self._poll_ready(lambda: _tcp_accepts("127.0.0.1", self.port)):
            raise RuntimeError(
                f"{self.label} did not open {self.endpoint} within {self.startup_timeout:.0f}s"
            )
