"""The embedded PostgreSQL's lifecycle: shared by users, stopped by the last, immune to crashed users."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from ledger.storage.embedded import EmbeddedPostgres


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_crashed_users_pid_does_not_keep_the_server_running(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path)
    url = server.acquire()
    users_file = tmp_path / "postgres" / "users.json"
    registered = json.loads(users_file.read_text())
    assert len(registered) == 1
    users_file.write_text(json.dumps([*registered, [dead_pid(), 1_700_000_000.0]]))

    server.release()

    assert not server.status().running
    try:
        psycopg.connect(url, connect_timeout=2).close()
        reachable = True
    except psycopg.OperationalError:
        reachable = False
    assert not reachable


def test_a_reused_pid_is_not_taken_for_a_live_user(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path)
    server.acquire()
    users_file = tmp_path / "postgres" / "users.json"
    # Our own pid, but a start time it never had: a dead user whose pid was handed to another process.
    users_file.write_text(json.dumps([*json.loads(users_file.read_text()), [os.getpid(), 1.0]]))
    server.release()
    assert not server.status().running


def test_two_uses_by_one_process_keep_the_server_until_both_end(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path)
    server.acquire()
    server.acquire()
    server.release()
    assert server.status().running
    server.release()
    assert not server.status().running


def test_a_pinned_server_outlives_its_users_until_unpinned(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path)
    server.pin()
    server.acquire()
    server.release()
    assert server.status().running

    assert server.unpin() == []
    assert not server.status().running


def test_data_survives_a_restart(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path)
    with psycopg.connect(server.acquire(), autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (42)")
    server.release()

    with psycopg.connect(server.acquire()) as conn:
        assert conn.execute("SELECT x FROM kept").fetchone() == (42,)
    server.release()


def test_the_server_listens_on_loopback_with_a_password(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path)
    url = server.acquire()
    try:
        with psycopg.connect(url) as conn:
            assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
            assert conn.execute("SHOW password_encryption").fetchone() == ("scram-sha-256",)
        wrong = url.replace(url.split(":")[2].split("@")[0], "wrong-password")
        try:
            psycopg.connect(wrong, connect_timeout=5).close()
            refused = False
        except psycopg.OperationalError:
            refused = True
        assert refused
    finally:
        server.release()


USER_SCRIPT = """
import sys, time
from pathlib import Path
from ledger.storage.embedded import EmbeddedPostgres
print(EmbeddedPostgres(Path(sys.argv[1])).acquire(), flush=True)
time.sleep(600)
"""


def start_user(home: Path) -> tuple[subprocess.Popen[str], str]:
    """Another process using the server of ``home``, as a ledger command does; returns it and the URL."""
    user = subprocess.Popen([sys.executable, "-c", USER_SCRIPT, str(home)], stdout=subprocess.PIPE, text=True)
    assert user.stdout is not None
    return user, user.stdout.readline().strip()


def reachable(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True


def test_the_watchdog_stops_the_server_when_its_last_user_is_killed(tmp_path: Path) -> None:
    import signal
    import time

    user, url = start_user(tmp_path)
    assert reachable(url)
    user.send_signal(signal.SIGKILL)  # no release, no cleanup: only the watchdog can notice
    user.wait()

    pidfile = tmp_path / "postgres" / "data" / "postmaster.pid"  # removed when the server has shut down
    deadline = time.monotonic() + 120  # a bound on waiting, far above WATCH_INTERVAL, not a measurement
    while pidfile.exists() or reachable(url):
        assert time.monotonic() < deadline, "the orphaned server is still running"
        time.sleep(0.5)


def test_status_stops_an_orphan_whose_watchdog_was_killed_too(tmp_path: Path) -> None:
    import signal

    user, url = start_user(tmp_path)
    server = EmbeddedPostgres(tmp_path)
    watchdog = server.status().watchdog
    assert watchdog is not None
    import psutil

    os.kill(watchdog, signal.SIGKILL)
    psutil.Process(watchdog).wait(timeout=60)
    user.send_signal(signal.SIGKILL)
    os.waitid(os.P_PID, user.pid, os.WEXITED | os.WNOWAIT)  # dead but not reaped: a zombie is no user either

    status = server.status()

    assert status.stopped_orphan
    assert not status.running
    assert not reachable(url)
    user.wait()


def test_a_watchdog_leaves_a_server_alone_while_a_user_lives(tmp_path: Path) -> None:
    user, url = start_user(tmp_path)
    server = EmbeddedPostgres(tmp_path)
    try:
        first = server.status()
        assert first.running
        assert first.users == [user.pid]
        assert first.watchdog is not None
        assert server.acquire() == url  # a second user joins; no second watchdog is started
        assert server.status().watchdog == first.watchdog
        server.release()
        assert server.status().running
    finally:
        user.kill()
        user.wait()


def test_status_names_the_address_without_the_password(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path)
    url = server.acquire()
    try:
        status = server.status()
        password = (tmp_path / "postgres" / "password").read_text().strip()
        assert status.url == url
        assert password in url
        assert status.address is not None
        assert password not in status.address
        assert status.address == url.replace(":" + url.split(":")[2].split("@")[0], "")
    finally:
        server.release()
