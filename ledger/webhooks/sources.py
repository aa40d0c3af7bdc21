"""The webhook sources on record (``webhook_sources``), how a delivery proves which one it is, and the
ledger's state a mapping reads (``StateLookup``).

Each source is one tool instance bound to one tenant, with a secret of its own
(``secrets.token_urlsafe(32)``, shown once by ``ledger sources add`` and ``rotate``). Label Studio signs
nothing and sends the secret as ``Authorization: Bearer``, so only its SHA-256 is kept; CVAT signs each body
with it (HMAC-SHA256), so the secret itself is kept. Both checks compare in constant time, and a refusal
never says whether the name or the secret was wrong.

``webhook_places`` (``remember``, ``StateLookup.place``) is a lookup cache, not the record: where an
earlier delivery placed a tool object, for a later one that no longer says (a Label Studio deletion).
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ledger.domain.envelope import TENANT_PATTERN
from ledger.domain.errors import AuthenticationFailed, FieldError, NotFound, ValidationFailed
from ledger.storage.database import Database
from ledger.webhooks.config import config_document, parse_config
from ledger.webhooks.model import KINDS, AnnotationState, GuidelineState, Kind, Source, SourceConfig

NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$"
"""A source's name: lowercase letters, digits and ``-`` (not first or last), at most 40 characters; it is
part of every event id and annotation id mapped from the source."""
MAX_NAME_LENGTH = 40
SHORT_KIND: dict[Kind, str] = {"label-studio": "ls", "cvat": "cvat"}
"""The prefix of a source's default name (``ls-1``, ``cvat-2``)."""

_REFUSED = "the webhook source is not known or its secret does not match"
_NO_DIGEST = hashlib.sha256(b"no such source").hexdigest()  # compared against when the name is unknown
_COLUMNS = "name, kind, tenant, config, created_at, rotated_at"

Connection = psycopg.Connection[tuple[Any, ...]]


class SourceExists(ValidationFailed):
    """``ledger sources add --name N`` for a name already on record: the field ``name`` is refused."""

    code = "source_exists"
    title = "A webhook source of that name exists"


def new_secret() -> str:
    """A fresh source secret: 32 random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def secret_digest(secret: str) -> str:
    """The hex SHA-256 a Label Studio source's bearer secret is kept as."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def check_name(name: str) -> str:
    """``name`` when it may name a source; ``ValidationFailed`` naming ``name`` otherwise."""
    if len(name) > MAX_NAME_LENGTH or not re.fullmatch(NAME_PATTERN, name):
        msg = (
            f"a source name is 1-{MAX_NAME_LENGTH} lowercase letters, digits and '-' (not first or last), "
            f"got {name!r}"
        )
        raise ValidationFailed(f"name: {msg}", errors=[FieldError("name", msg)])
    return name


def _check_tenant(tenant: str) -> None:
    if not re.fullmatch(TENANT_PATTERN, tenant):
        msg = f"a tenant is 1-63 lowercase letters, digits and '-', starting with a letter or digit, got {tenant!r}"
        raise ValidationFailed(f"tenant: {msg}", errors=[FieldError("tenant", msg)])


def _check_kind(kind: str) -> Kind:
    if kind not in KINDS:
        msg = f"the kind of a source is one of {', '.join(KINDS)}, got {kind!r}"
        raise ValidationFailed(f"kind: {msg}", errors=[FieldError("kind", msg)])
    return kind


def webhook_url(base_url: str, source: Source) -> str:
    """Where ``source``'s tool posts: ``<base>/v1/webhooks/<kind>?source=<name>`` (a name needs no quoting)."""
    return f"{base_url.rstrip('/')}/v1/webhooks/{source.kind}?source={source.name}"


def unknown_source(name: str) -> NotFound:
    """The refusal of a command naming a source that is not on record."""
    return NotFound(f"no webhook source is named {name!r}; `ledger sources list` shows the sources on record")


class SourceStore:
    """The rows of ``webhook_sources`` and ``webhook_places``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self, kind: str, tenant: str, name: str | None = None, config: SourceConfig | None = None
    ) -> tuple[Source, str]:
        """Put a new source on record; returns it and its secret, to be shown once: Label Studio's is kept
        as its SHA-256 only, CVAT's as is (its HMAC needs it). ``name`` defaults to ``<ls|cvat>-<n>``, the
        first n not taken; a name taken is ``SourceExists``."""
        checked = _check_kind(kind)
        _check_tenant(tenant)
        if name is not None:
            check_name(name)
        secret = new_secret()
        kept, digest = (None, secret_digest(secret)) if checked == "label-studio" else (secret, None)
        document = Jsonb(config_document(config or SourceConfig()))
        with self._db.connect() as conn, conn.transaction():
            while True:
                candidate = name or _next_default(conn, checked)
                row = conn.execute(
                    "INSERT INTO webhook_sources (name, kind, tenant, secret, secret_sha256, config)"
                    f" VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO NOTHING RETURNING {_COLUMNS}",
                    (candidate, checked, tenant, kept, digest, document),
                ).fetchone()
                if row is not None:
                    return _source(row), secret
                if name is not None:
                    msg = f"a webhook source named {name!r} exists already; choose another --name"
                    raise SourceExists(msg, errors=[FieldError("name", "is taken")])
                # a default name another `sources add` took meanwhile: count on

    def get(self, name: str) -> Source:
        """The source named ``name``; ``NotFound`` naming it when there is none."""
        with self._db.connect() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM webhook_sources WHERE name = %s", (name,)).fetchone()
        if row is None:
            raise unknown_source(name)
        return _source(row)

    def list(self) -> builtins.list[Source]:
        """Every source, by name."""
        with self._db.connect() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM webhook_sources ORDER BY name").fetchall()
        return [_source(r) for r in rows]

    def rotate(self, name: str) -> str:
        """Give source ``name`` a new secret and return it; the old one is refused from now on."""
        secret = new_secret()
        with self._db.connect() as conn, conn.transaction():
            row = conn.execute(
                "UPDATE webhook_sources SET rotated_at = now(),"
                " secret = CASE WHEN kind = 'cvat' THEN %s END,"
                " secret_sha256 = CASE WHEN kind = 'label-studio' THEN %s END"
                " WHERE name = %s RETURNING name",
                (secret, secret_digest(secret), name),
            ).fetchone()
        if row is None:
            raise unknown_source(name)
        return secret

    def configure(self, name: str, config: SourceConfig) -> Source:
        """Replace source ``name``'s mapping config; deliveries from now on are mapped under it."""
        with self._db.connect() as conn, conn.transaction():
            row = conn.execute(
                f"UPDATE webhook_sources SET config = %s WHERE name = %s RETURNING {_COLUMNS}",
                (Jsonb(config_document(config)), name),
            ).fetchone()
        if row is None:
            raise unknown_source(name)
        return _source(row)

    def authenticate_bearer(self, name: str, token: str) -> Source:
        """The Label Studio source ``name`` when ``token`` is its secret; ``AuthenticationFailed`` (never
        saying whether the name or the secret was wrong) otherwise."""
        with self._db.connect() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS}, secret_sha256 FROM webhook_sources WHERE name = %s AND kind = 'label-studio'",
                (name,),
            ).fetchone()
        expected = str(row[6]) if row is not None else _NO_DIGEST
        if not hmac.compare_digest(secret_digest(token), expected) or row is None:
            raise AuthenticationFailed(_REFUSED)
        return _source(row)

    def cvat_secret(self, name: str) -> tuple[Source, str]:
        """The CVAT source ``name`` and the secret its deliveries are signed with; ``AuthenticationFailed``
        (the same refusal as a wrong signature's) when there is no such CVAT source."""
        with self._db.connect() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS}, secret FROM webhook_sources WHERE name = %s AND kind = 'cvat'", (name,)
            ).fetchone()
        if row is None:
            raise AuthenticationFailed(_REFUSED)
        return _source(row), str(row[6])

    def remember(
        self, source: Source, places: Iterable[tuple[str, str, str]], *, conn: Connection | None = None
    ) -> None:
        """Record where ``places`` (``(ref, dataset, item)``) put the source's tool objects (an upsert:
        the latest delivery's word stands); on ``conn`` when given, in the caller's transaction."""
        rows = [(source.name, ref, source.tenant, dataset, item) for ref, dataset, item in places]
        if not rows:
            return
        with self._connection(conn) as c, c.cursor() as cur:
            cur.executemany(
                "INSERT INTO webhook_places (source, ref, tenant, dataset, item) VALUES (%s, %s, %s, %s, %s)"
                " ON CONFLICT (source, ref) DO UPDATE SET tenant = EXCLUDED.tenant,"
                " dataset = EXCLUDED.dataset, item = EXCLUDED.item",
                rows,
            )

    @contextmanager
    def _connection(self, conn: Connection | None) -> Iterator[Connection]:
        if conn is not None:
            yield conn
            return
        with self._db.connect() as own, own.transaction():
            yield own


class StateLookup:
    """``model.Lookup`` over the ledger's projections and ``webhook_places``, within ``source``'s tenant:
    on ``conn`` (the service's, under its per-source lock) or a pooled connection per question."""

    def __init__(self, conn_or_db: Connection | Database, source: Source) -> None:
        self._on = conn_or_db
        self._source = source

    def place(self, ref: str) -> tuple[str, str] | None:
        """Where an earlier delivery of the source placed tool object ``ref``, or ``None``."""
        rows = self._rows(
            "SELECT dataset, item FROM webhook_places WHERE source = %s AND ref = %s AND tenant = %s",
            (self._source.name, ref, self._source.tenant),
        )
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    def refs_under(self, prefix: str) -> Sequence[str]:
        """Every ref the source placed that starts ``prefix`` (the primary key's index), sorted."""
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._rows(
            "SELECT ref FROM webhook_places WHERE source = %s AND tenant = %s AND ref LIKE %s ORDER BY ref",
            (self._source.name, self._source.tenant, pattern),
        )
        return [str(r[0]) for r in rows]

    def annotations_on(self, dataset: str, item: str) -> Sequence[AnnotationState]:
        """Every annotation of the tenant on the item (``proj_annotations_item`` index), deleted ones too."""
        rows = self._rows(
            "SELECT annotation_id, dataset, item, version, status, label_class, geometry, origin, updated_at"
            " FROM proj_annotations WHERE tenant = %s AND dataset = %s AND item = %s ORDER BY annotation_id",
            (self._source.tenant, dataset, item),
        )
        return [
            AnnotationState(
                annotation_id=str(r[0]),
                dataset=str(r[1]),
                item=str(r[2]),
                version=int(r[3]),
                status=str(r[4]),
                label_class=str(r[5]),
                geometry=r[6],
                origin=str(r[7]),
                updated_at=r[8],
            )
            for r in rows
        ]

    def guideline_published(self, guideline_id: str, version: str) -> bool:
        """Whether the tenant's ``proj_guidelines`` holds that version."""
        return bool(
            self._rows(
                "SELECT 1 FROM proj_guidelines WHERE tenant = %s AND guideline_id = %s AND version = %s",
                (self._source.tenant, guideline_id, version),
            )
        )

    def guideline_versions(self, guideline_id: str) -> Sequence[GuidelineState]:
        """Every version of the guideline the tenant's ``proj_guidelines`` holds, oldest ``effective_from``
        first."""
        rows = self._rows(
            "SELECT guideline_id, version, effective_from, effective_until FROM proj_guidelines"
            " WHERE tenant = %s AND guideline_id = %s ORDER BY effective_from, version",
            (self._source.tenant, guideline_id),
        )
        return [GuidelineState(str(r[0]), str(r[1]), r[2], r[3]) for r in rows]

    def _rows(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        if isinstance(self._on, Database):
            with self._on.connect() as conn:
                return conn.execute(sql, params).fetchall()
        return self._on.execute(sql, params).fetchall()


def _next_default(conn: Connection, kind: Kind) -> str:
    """``<short>-<n>`` with the smallest n ≥ 1 no source is named."""
    prefix = SHORT_KIND[kind]
    taken = {
        str(r[0])
        for r in conn.execute("SELECT name FROM webhook_sources WHERE name LIKE %s", (f"{prefix}-%",))
    }
    n = 1
    while f"{prefix}-{n}" in taken:
        n += 1
    return f"{prefix}-{n}"


def _source(row: Sequence[Any]) -> Source:
    name = str(row[0])
    return Source(
        name=name,
        kind=_check_kind(str(row[1])),
        tenant=str(row[2]),
        config=parse_config(row[3], where=f"webhook_sources.config of source {name}"),
        created_at=row[4],
        rotated_at=row[5],
    )
