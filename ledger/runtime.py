"""The one place that wires settings, storage, keys and services together for a command or the server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ledger.checkpoints import CheckpointService, DirectoryPublisher, KafkaPublisher, Publisher
from ledger.crypto.checkpoint_keys import LocalCheckpointKeyFile
from ledger.crypto.keys import LocalKeyFileProvider
from ledger.crypto.sealing import Sealer
from ledger.domain.errors import ConfigurationError
from ledger.projections.queries import ProjectionQueries
from ledger.settings import Settings
from ledger.storage import migrate
from ledger.storage.append import AppendService
from ledger.storage.database import Database
from ledger.storage.embedded import EmbeddedPostgres
from ledger.storage.keystore import PgSubjectKeyStore
from ledger.storage.queries import EventQueries
from ledger.storage.tree import LogTrees


@dataclass(frozen=True)
class Ledger:
    """Everything a command or request handler needs, built once."""

    settings: Settings
    db: Database
    sealer: Sealer
    appender: AppendService
    queries: EventQueries
    projections: ProjectionQueries
    trees: LogTrees
    checkpoints: CheckpointService


@contextmanager
def open_ledger(settings: Settings, *, pool_size: int | None = None) -> Iterator[Ledger]:
    """Open the ledger: start or join the embedded server, bring the schema up, wire the services.

    On an external database the schema is checked, not changed: ``ledger db upgrade`` changes it.
    """
    embedded = None if settings.database_url else EmbeddedPostgres(settings.home)
    url = embedded.acquire() if embedded else str(settings.database_url)
    db = Database(url, pool_size=pool_size or settings.db_pool_size)
    try:
        if embedded:
            migrate.upgrade(db)
        else:
            _require_current_schema(db)
        yield wire(settings, db)
    finally:
        db.dispose()
        if embedded:
            embedded.release()


def wire(settings: Settings, db: Database, *, project: bool = True) -> Ledger:
    """Build the services over an open database; ``project=False`` appends without inline projections."""
    from ledger.projections.registry import all_projectors

    sealer = Sealer(LocalKeyFileProvider(settings.resolved_master_key_file), PgSubjectKeyStore(db))
    appender = AppendService(
        db,
        sealer,
        projectors=all_projectors(settings.anomalies, settings.qc_policy) if project else (),
        lock_timeout=settings.db_lock_timeout,
        statement_timeout=settings.db_statement_timeout,
    )
    trees = LogTrees(db)
    return Ledger(
        settings,
        db,
        sealer,
        appender,
        EventQueries(db),
        ProjectionQueries(db),
        trees,
        checkpoint_service(settings, db, trees, appender),
    )


def checkpoint_service(
    settings: Settings, db: Database, trees: LogTrees, appender: AppendService
) -> CheckpointService:
    """The checkpoint service: the local key file, the publication directory, and the
    ``ledger.checkpoints`` topic when Kafka is configured."""
    from ledger.verifier.checkpoint import checkpoint_key_name
    from ledger.verifier.keys import parse_vkey

    cfg = settings.checkpoints
    key_name = checkpoint_key_name(cfg.deployment)
    publishers: list[Publisher] = []
    if settings.kafka_bootstrap:
        publishers.append(KafkaPublisher(settings.kafka_bootstrap, settings.kafka))
    return CheckpointService(
        db=db,
        trees=trees,
        appender=appender,
        keys=lambda: LocalCheckpointKeyFile(settings.checkpoint_key_file, key_name),
        deployment=cfg.deployment,
        every=cfg.every,
        seconds=cfg.seconds,
        directory=DirectoryPublisher(settings.checkpoint_dir),
        publishers=publishers,
        witness_keys=[parse_vkey(k) for k in cfg.witness_keys],
    )


def _require_current_schema(db: Database) -> None:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(migrate.alembic_config(db)).get_current_head()
    current = migrate.current_revision(db)
    if current != head:
        msg = (
            f"the database schema is at revision {current or 'none'} but this ledger needs {head}; "
            "run `ledger db upgrade` first"
        )
        raise ConfigurationError(msg)
