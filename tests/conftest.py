"""Shared fixtures: a real PostgreSQL (embedded by default, or LEDGER_TEST_DATABASE_URL), a real HTTP server."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import settings

from ledger.api.app import create_app
from ledger.auth.tokens import sign_token
from ledger.quality.policy import Application, QcPolicy
from ledger.runtime import Ledger, wire
from ledger.settings import AnomalySettings, Settings
from ledger.storage import migrate
from ledger.storage.database import Database
from ledger.storage.embedded import EmbeddedPostgres, free_port

# CI replays the same examples on every run (a failure there is reproducible and cannot come and go);
# a developer's run draws new ones, which is how new failures are found.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

TEMPLATE = "ledger_test_template"
_counter = itertools.count()


def _admin_url(url: str, database: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + database


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a PostgreSQL server the tests may create databases on."""
    external = os.environ.get("LEDGER_TEST_DATABASE_URL")
    if external:
        yield external
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg-home"))
    url = server.acquire()
    try:
        yield url
    finally:
        server.release()


@pytest.fixture(scope="session")
def template_url(pg_server: str) -> str:
    """A migrated template database; each test database is a copy of it."""
    with psycopg.connect(_admin_url(pg_server, "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    url = _admin_url(pg_server, TEMPLATE)
    db = Database(url, pool_size=1)
    migrate.upgrade(db)
    db.dispose()
    return url


@contextmanager
def fresh_database(pg_server: str, name: str, *, migrated: bool = True) -> Iterator[str]:
    """A database of its own on the test server (a copy of the migrated template, or empty with
    ``migrated=False``), dropped afterwards; yields its URL. Callers with ``migrated`` need ``template_url``."""
    template = f" TEMPLATE {TEMPLATE}" if migrated else ""
    with psycopg.connect(_admin_url(pg_server, "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}{template}")
    try:
        yield _admin_url(pg_server, name)
    finally:
        with psycopg.connect(_admin_url(pg_server, "postgres"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def database_url(pg_server: str, template_url: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own."""
    with fresh_database(pg_server, f"ledger_test_{os.getpid()}_{next(_counter)}") as url:
        yield url


@pytest.fixture(scope="session")
def signing_key() -> Ed25519PrivateKey:
    """The key test tokens are signed with."""
    return Ed25519PrivateKey.generate()


def _settings(home: Path, url: str, signing_key: Ed25519PrivateKey) -> Settings:
    public = home / "jwt-public.pem"
    public.write_bytes(
        signing_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return Settings(home=home, database_url=url, jwt_public_key_file=public)


@pytest.fixture
def ledger(database_url: str, tmp_path: Path, signing_key: Ed25519PrivateKey) -> Iterator[Ledger]:
    """The wired services over this test's own database."""
    db = Database(database_url, pool_size=4)
    yield wire(_settings(tmp_path, database_url, signing_key), db)
    db.dispose()


@pytest.fixture(scope="session")
def shared_ledger(pg_server: str, template_url: str, tmp_path_factory: pytest.TempPathFactory,
                  signing_key: Ed25519PrivateKey) -> Iterator[Ledger]:  # fmt: skip
    """One database for the HTTP tests, which keep apart by using a tenant each."""
    with fresh_database(pg_server, f"ledger_test_shared_{os.getpid()}") as url:
        db = Database(url, pool_size=8)
        shared = dataclasses.replace(
            _settings(tmp_path_factory.mktemp("shared-home"), url, signing_key),
            anomalies=ROUND_THE_CLOCK,
            qc_policy=SHARED_QC_POLICY,
        )
        yield wire(shared, db)
        db.dispose()


SHARED_QC_POLICY = QcPolicy(
    applications={
        "route-qc": Application(guideline="qc-route", item_agreement_min=1.0, annotator_accuracy_min=0.8)
    },
    sha256="0" * 64,
    source="tests/conftest.py",
)
"""The shared server's QC policy: annotations under guideline ``qc-route`` are held to full class agreement."""

ROUND_THE_CLOCK = AnomalySettings(
    working_days=frozenset(range(7)), workday_start=dt.time.min, workday_end=dt.time.max
)
"""Working hours of the shared test server: every read a test makes is recorded, and the off_hours rule
would otherwise raise an anomaly for it or not depending on the hour the suite runs."""


@contextmanager
def serving(ledger: Ledger) -> Iterator[str]:
    """A real uvicorn server on a loopback port serving ``ledger``, stopped on exit; yields its URL."""
    port = free_port()
    config = uvicorn.Config(create_app(ledger), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            pytest.fail("the test HTTP server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def server_url(shared_ledger: Ledger) -> Iterator[str]:
    """A real uvicorn server on a loopback port, serving the shared ledger."""
    with serving(shared_ledger) as url:
        yield url


@pytest.fixture
def tenant() -> str:
    """A tenant name no other test uses."""
    return f"t-{uuid.uuid4().hex[:12]}"


TokenFactory = Callable[..., str]


@pytest.fixture
def token(shared_ledger: Ledger, signing_key: Ed25519PrivateKey) -> TokenFactory:
    """``token("auditor", tenant=...)`` signs a test token the server accepts."""

    def make(*roles: str, tenant: str, subject: str = "tester", ttl: int = 600, mfa: bool = False) -> str:
        return sign_token(signing_key, shared_ledger.settings, roles=list(roles), tenant=tenant, subject=subject,
                          ttl_seconds=ttl, mfa=mfa)  # fmt: skip

    return make


@pytest.fixture
def http(server_url: str) -> Iterator[httpx.Client]:
    """An HTTP client for the test server."""
    with httpx.Client(base_url=server_url, timeout=30) as client:
        yield client


def make_event(
    tenant: str, type_: str = "annotation.created", *, id: str | None = None, **overrides: Any
) -> dict[str, Any]:
    """A valid CloudEvent of ``type_`` from the committed examples, re-addressed to ``tenant``."""
    from tests.factories import example_event

    return example_event(type_, tenant=tenant, id=id, **overrides)
