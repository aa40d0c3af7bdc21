"""The ``ledger`` command as a user runs it, on the embedded default, in a fresh LEDGER_HOME."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import free_port
from tests.factories import example_event

LEDGER = [sys.executable, "-m", "ledger.cli.main"]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "ledger-home"


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env["LEDGER_HOME"] = str(home)
    return env


def run(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LEDGER, *args], env=env_for(home), capture_output=True, text=True, timeout=timeout, check=False
    )


def until(
    condition: Callable[[], bool], what: str, serve: subprocess.Popen[bytes], timeout: float = 60
) -> None:
    """Wait for ``condition``; fail saying ``what`` did not happen, or with serve's output if it died."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert serve.poll() is None, serve.stdout.read().decode() if serve.stdout else ""
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 now (a server that is not up yet does not)."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def serve_process(
    home: Path, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A real ``ledger serve`` over ``home`` and its base URL, once ``/health`` answers; SIGTERM after."""
    port = free_port()
    serve = subprocess.Popen(
        [*LEDGER, "serve", "--port", str(port)],
        env=env or env_for(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        until(lambda: answers(f"{base}/health"), "ledger serve did not come up", serve)
        yield serve, base
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)


def status(home: Path) -> dict:
    result = run(home, "db", "status")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_help_explains_every_command(home: Path) -> None:
    result = run(home, "--help")
    assert result.returncode == 0
    for command in ("serve", "db", "token", "verify", "demo"):
        assert command in result.stdout


def test_demo_then_verify_and_the_server_stops_afterwards(home: Path) -> None:
    demo = run(home, "demo", "--events", "2500")
    assert demo.returncode == 0, demo.stderr
    assert "recorded 2,500 new events" in demo.stdout
    assert "ledger serve" in demo.stdout  # says what to try next
    # LEDGER_QC_POLICY is unset: the demo used its own policy, and says how `ledger serve` keeps it
    (line,) = [line for line in demo.stdout.splitlines() if "export LEDGER_QC_POLICY=" in line]
    assert Path(line.split("=", 1)[1]).name == "qc-policy.toml"
    assert Path(line.split("=", 1)[1]).is_file()

    verified = run(home, "verify", "--json")
    assert verified.returncode == 0, verified.stderr
    report = json.loads(verified.stdout)
    assert report["intact"] is True
    assert report["events_checked"] == 2500

    assert status(home)["running"] is False  # the last command out stopped it


def test_demo_with_a_qc_policy_set_uses_that_one_and_prints_no_other(home: Path, tmp_path: Path) -> None:
    from ledger.synth.project import QC_POLICY

    policy = tmp_path / "policy.toml"
    policy.write_bytes(QC_POLICY.read_bytes())
    env = {**env_for(home), "LEDGER_QC_POLICY": str(policy)}
    demo = subprocess.run(
        [*LEDGER, "demo", "--events", "50"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert demo.returncode == 0, demo.stderr
    assert "recorded 50 new events" in demo.stdout
    assert "LEDGER_QC_POLICY" not in demo.stdout


def test_the_same_seed_twice_records_nothing_new_and_another_seed_adds(home: Path) -> None:
    assert run(home, "demo", "--events", "300").returncode == 0
    again = run(home, "demo", "--events", "300")
    assert "recorded 0 new events" in again.stdout
    assert "300 were already there" in again.stdout
    other_seed = run(home, "demo", "--events", "300", "--seed", "8")
    assert "recorded 300 new events" in other_seed.stdout, other_seed.stderr


def test_token_prints_the_token_alone(home: Path) -> None:
    result = run(home, "token", "--role", "auditor", "--tenant", "acme")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    assert result.stdout.strip().count(".") == 2


def test_token_refuses_an_unknown_role(home: Path) -> None:
    result = run(home, "token", "--role", "superuser", "--tenant", "acme")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_db_start_url_and_stop(home: Path) -> None:
    started = run(home, "db", "start")
    assert started.returncode == 0, started.stderr
    url = run(home, "db", "url").stdout.strip()
    assert url == started.stdout.strip()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert status(home)["pinned"] is True

    assert run(home, "db", "stop").returncode == 0
    assert status(home)["running"] is False
    assert run(home, "db", "url").returncode == 2  # says how to start it


def test_verify_exits_1_and_names_the_break(home: Path) -> None:
    assert run(home, "demo", "--events", "400").returncode == 0
    url = run(home, "db", "start").stdout.strip()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER TABLE ledger_events DISABLE TRIGGER USER")
            conn.execute("DELETE FROM ledger_events WHERE position = 123")
        result = run(home, "verify")
    finally:
        run(home, "db", "stop")
    assert result.returncode == 1
    assert "BROKEN  acme at position 123" in result.stdout


def test_verify_refuses_a_log_that_does_not_exist(home: Path) -> None:
    assert run(home, "demo", "--events", "50").returncode == 0
    result = run(home, "verify", "--log", "acmee")
    assert result.returncode == 2
    assert "there is no log 'acmee'" in result.stderr


def test_a_database_that_cannot_be_reached_is_exit_2_with_a_message(home: Path) -> None:
    env = {**env_for(home), "LEDGER_DATABASE_URL": "postgresql://x:y@127.0.0.1:1/ledger"}
    result = subprocess.run(
        [*LEDGER, "verify"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2  # never 1, which means "a log is broken"
    assert "cannot reach PostgreSQL" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_shares_its_database_with_other_commands_and_stops_it_on_exit(home: Path) -> None:
    with serve_process(home) as (serve, base):
        assert serve.pid in status(home)["users"]
        ingest = run(home, "token", "--role", "ingest", "--tenant", "acme").stdout.strip()
        event = example_event("annotation.created", tenant="acme")
        posted = httpx.post(f"{base}/v1/events", json=event, headers={"authorization": f"Bearer {ingest}"})
        assert posted.status_code == 201, posted.text

        # serve signs a log's first checkpoint at its next round; wait for it, so what verify sees is fixed
        auditor = run(home, "token", "--role", "auditor", "--tenant", "acme").stdout.strip()
        checkpoint = f"{base}/v1/logs/acme/checkpoint"
        auth = {"authorization": f"Bearer {auditor}"}
        until(lambda: httpx.get(checkpoint, headers=auth).status_code == 200, "no checkpoint signed", serve)

        verified = json.loads(run(home, "verify", "--json").stdout)  # joins the running server
        # The event, the checkpoint recorded for it, and the records of the polls for that checkpoint
        # (each read is on the record, the failed ones too): every one of them checked.
        assert verified["events_checked"] == sum(log["size"] for log in verified["logs"]) >= 3
        assert verified["checkpoints_checked"] == 1
        assert status(home)["running"] is True  # verify leaving did not stop serve's database
    assert status(home)["running"] is False


def test_serve_refuses_a_public_bind_in_embedded_mode(home: Path) -> None:
    result = run(home, "serve", "--host", "0.0.0.0")  # noqa: S104 - the point of the test
    assert result.returncode == 2
    assert "loopback" in result.stderr


def test_rebuild_and_the_retention_report_from_the_command_line(home: Path, tmp_path: Path) -> None:
    import hashlib

    assert run(home, "demo", "--events", "1500").returncode == 0
    assert run(home, "verify").returncode == 0
    rebuilt = run(home, "projections", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "from 1,500 events" in rebuilt.stdout

    out = tmp_path / "retention.html"
    report = run(
        home, "report", "retention", "--as-of", "2033-01-01", "--format", "html", "--output", str(out)
    )
    assert report.returncode == 0, report.stderr
    page = out.read_text()
    assert "Record retention report" in page
    assert "intact" in page  # the integrity status of the verify just run
    assert f"SHA-256 {hashlib.sha256(out.read_bytes()).hexdigest()} recorded at ledger/" in report.stderr


def test_rebuild_help_names_the_projections(home: Path) -> None:
    result = run(home, "projections", "rebuild", "--help")
    assert result.returncode == 0
    for name in ("workflow", "provenance", "retention"):
        assert name in result.stdout


@pytest.fixture
def pinned(home: Path) -> Iterator[str]:
    """A ledger with two tenants' demo events whose server stays up between commands; yields its URL."""
    assert run(home, "demo", "--events", "120").returncode == 0
    assert run(home, "demo", "--events", "80", "--tenant", "beta").returncode == 0
    started = run(home, "db", "start")
    assert started.returncode == 0, started.stderr
    yield started.stdout.strip()
    run(home, "db", "stop")


def logs_recorded(home: Path) -> dict[str, int]:
    verified = run(home, "verify", "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    return {entry["log"]: entry["size"] for entry in json.loads(verified.stdout)["logs"]}


def test_verify_one_log_on_a_clean_ledger_and_with_a_break(home: Path, pinned: str) -> None:
    clean = run(home, "verify", "--log", "acme", "--json")
    assert clean.returncode == 0, clean.stderr
    assert [entry["log"] for entry in json.loads(clean.stdout)["logs"]] == ["acme"]

    with psycopg.connect(pinned, autocommit=True) as conn:
        conn.execute("ALTER TABLE ledger_events DISABLE TRIGGER USER")
        conn.execute("DELETE FROM ledger_events WHERE log = 'beta' AND position = 17")
    assert run(home, "verify", "--log", "acme").returncode == 0  # beta's break is not acme's
    broken = run(home, "verify", "--log", "beta")
    assert broken.returncode == 1, broken.stderr
    assert "BROKEN  beta at position 17" in broken.stdout


def test_db_status_hides_the_password_that_db_url_prints_for_psql(home: Path, pinned: str) -> None:
    password = (home / "postgres" / "password").read_text().strip()
    shown = status(home)
    assert shown["running"] is True
    assert password not in json.dumps(shown)
    assert shown["url"] == pinned.replace(f":{password}@", "@")

    assert run(home, "db", "url").stdout.strip() == pinned
    assert password in pinned
    assert "password" in run(home, "db", "--help").stdout  # the help says what `db url` prints


def test_a_second_serve_on_a_busy_port_exits_2_naming_the_port(home: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(home, "serve", "--port", str(port), timeout=60)
    assert result.returncode == 2, result.stderr
    assert f"127.0.0.1:{port}" in result.stderr
    assert "already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_report_that_cannot_be_written_or_names_no_log_records_nothing(
    home: Path, pinned: str, tmp_path: Path
) -> None:
    before = logs_recorded(home)

    unwritable = run(home, "report", "retention", "--output", "/nonexistent/dir/r.html")
    assert unwritable.returncode == 2
    assert "--output /nonexistent/dir/r.html: cannot write there" in unwritable.stderr
    assert "Traceback" not in unwritable.stderr

    reports = tmp_path / "reports"
    reports.mkdir()
    nosuch = run(home, "report", "retention", "--tenant", "nosuch", "--output", str(reports / "r.html"))
    assert nosuch.returncode == 2
    assert "--tenant nosuch" in nosuch.stderr
    assert "has no log" in nosuch.stderr
    assert list(reports.iterdir()) == []  # neither the report nor its staged file

    assert logs_recorded(home) == before  # no ledger.report_generated, no log "nosuch"


def test_the_report_shows_whole_head_hashes_as_verify_does(home: Path, pinned: str, tmp_path: Path) -> None:
    verified = json.loads(run(home, "verify", "--json").stdout)
    heads = {entry["log"]: entry["head_hash"] for entry in verified["logs"]}
    assert all(len(h) == 64 for h in heads.values())

    page = tmp_path / "retention.html"
    assert run(home, "report", "retention", "--output", str(page)).returncode == 0
    assert all(h in page.read_text() for h in heads.values())
    as_json = run(home, "report", "retention", "--tenant", "acme", "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert [lg["head_hash"] for lg in json.loads(as_json.stdout)["logs"]] == [heads["acme"]]


def test_verify_in_worker_processes_says_what_one_process_says(home: Path, pinned: str) -> None:
    def verdict(*args: str) -> tuple[int, dict]:
        result = run(home, "verify", "--json", *args)
        report = json.loads(result.stdout)
        report.pop("seconds")
        return result.returncode, report

    assert verdict("--jobs", "2") == verdict("--jobs", "1")  # two logs: one range each, one per worker
    with psycopg.connect(pinned, autocommit=True) as conn:
        conn.execute("ALTER TABLE ledger_events DISABLE TRIGGER USER")
        conn.execute("UPDATE ledger_events SET actor = 'forged' WHERE log = 'beta' AND position = 33")
    code, report = verdict("--jobs", "2")
    assert (code, report) == verdict("--jobs", "1")
    assert code == 1
    [beta] = [entry for entry in report["logs"] if entry["log"] == "beta"]
    assert beta["first_break"]["position"] == 33
    assert "actor" in beta["first_break"]["reason"]
    assert run(home, "verify", "--jobs", "0").returncode == 2
