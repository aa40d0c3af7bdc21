"""The embedded PostgreSQL's lifecycle: shared by users, stopped by the last, immune to crashed users."""

from __future__ import annotations

import json
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
    users_file.write_text(json.dumps([*json.loads(users_file.read_text()), dead_pid()]))

    server.release()

    assert not server.status().running
    try:
        psycopg.connect(url, connect_timeout=2).close()
        reachable = True
    except psycopg.OperationalError:
        reachable = False
    assert not reachable


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
        assert "@127.0.0.1:" in url
        wrong = url.replace(url.split(":")[2].split("@")[0], "wrong-password")
        try:
            psycopg.connect(wrong, connect_timeout=5).close()
            refused = False
        except psycopg.OperationalError:
            refused = True
        assert refused
    finally:
        server.release()
