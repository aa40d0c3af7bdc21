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
