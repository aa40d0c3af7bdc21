"""One settings object, built once at the entry point from ``LEDGER_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ledger.domain.errors import ConfigurationError

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Every knob the ledger has. Nothing deeper in the code reads the environment."""

    home: Path = field(default_factory=lambda: Path(".ledger").resolve())
    database_url: str | None = None
    kafka_bootstrap: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    jwt_issuer: str = "ledger-dev"
    jwt_audience: str = "ledger"
    jwt_public_key_file: Path | None = None
    jwt_algorithms: tuple[str, ...] = ("EdDSA", "ES256", "RS256")
    master_key_file: Path | None = None
    db_pool_size: int = 8
    access_log: bool = False

    @property
    def embedded(self) -> bool:
        """True when the ledger runs its own PostgreSQL in ``home``."""
        return self.database_url is None

    @property
    def resolved_master_key_file(self) -> Path:
        """The file holding the master key that wraps per-subject sealing keys."""
        return self.master_key_file or self.home / "keys" / "master.key"

    @property
    def signing_key_file(self) -> Path:
        """The development token-signing key (embedded mode only)."""
        return self.home / "keys" / "token-signing.pem"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``LEDGER_*`` variables; unknown values raise ``ConfigurationError`` naming the variable."""
        env = os.environ if env is None else env
        home = Path(env.get("LEDGER_HOME", ".ledger")).expanduser().resolve()
        algorithms = tuple(
            a.strip() for a in env.get("LEDGER_JWT_ALGORITHMS", "EdDSA,ES256,RS256").split(",") if a.strip()
        )
        allowed = {"EdDSA", "ES256", "ES384", "RS256", "RS384", "RS512", "PS256"}
        bad = [a for a in algorithms if a not in allowed]
        if bad:
            msg = (
                f"LEDGER_JWT_ALGORITHMS contains {', '.join(bad)}; only asymmetric algorithms "
                f"({', '.join(sorted(allowed))}) are accepted"
            )
            raise ConfigurationError(msg)
        return cls(
            home=home,
            database_url=env.get("LEDGER_DATABASE_URL") or None,
            kafka_bootstrap=env.get("LEDGER_KAFKA_BOOTSTRAP") or None,
            host=env.get("LEDGER_HOST", "127.0.0.1"),
            port=_int(env, "LEDGER_PORT", 8000),
            jwt_issuer=env.get("LEDGER_JWT_ISSUER", "ledger-dev"),
            jwt_audience=env.get("LEDGER_JWT_AUDIENCE", "ledger"),
            jwt_public_key_file=_path(env, "LEDGER_JWT_PUBLIC_KEY_FILE"),
            jwt_algorithms=algorithms,
            master_key_file=_path(env, "LEDGER_MASTER_KEY_FILE"),
            db_pool_size=_int(env, "LEDGER_DB_POOL_SIZE", 8),
            access_log=env.get("LEDGER_ACCESS_LOG", "").lower() in _TRUE,
        )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        msg = f"{name} must be a whole number, got {raw!r}"
        raise ConfigurationError(msg) from None


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name)
    return Path(raw).expanduser().resolve() if raw else None
