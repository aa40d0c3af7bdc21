"""One settings object, built once at the entry point from ``LEDGER_*`` environment variables."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledger.domain.errors import ConfigurationError
from ledger.quality.policy import QcPolicy, load_policy

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


# ---- Kafka (issue 3) ----------------------------------------------------------------------------------

KafkaClient = Literal["kafka-python", "confluent"]
_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


@dataclass(frozen=True)
class KafkaSecurity:
    """TLS and SASL options, passed through to whichever Kafka client is in use."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None  # PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_password: str | None = field(default=None, repr=False)
    ssl_check_hostname: bool = True


@dataclass(frozen=True)
class KafkaSettings:
    """How ``ledger consume`` and the producers reach Kafka; the bootstrap servers are ``Settings.kafka_bootstrap``."""

    topic: str = "ledger.events"
    dlq_topic: str = "ledger.events.dlq"
    group: str = "ledger"
    client: KafkaClient = "kafka-python"
    batch_size: int = 1000  # messages per poll, hence per append transaction
    # Short enough that a group (re)join takes seconds, not tens of seconds, also against Tansu.
    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 1000
    rejection_tenant: str = "ledger"  # the log of rejections whose message names no usable tenant
    status_interval: float = 10.0  # seconds between status lines of `ledger consume`
    security: KafkaSecurity = field(default_factory=KafkaSecurity)


# ---- Bounds on what one request may cost (issue 7) -------------------------------------------------

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """How much one HTTP request may make the server hold; docs/security.md says why each is there."""

    # Parsing JSON into Python objects costs ~10x the body in memory: 16 MiB is over 10,000 typical
    # events per batch, and keeps one request's peak to a few hundred MB.
    max_body_bytes: int = 16 * MiB
    # Bodies over this size are "large": at most ``max_large_bodies`` are read and parsed at once,
    # the others wait up to ``large_body_wait_seconds`` and are then refused with 503 and Retry-After.
    large_body_bytes: int = 1 * MiB
    max_large_bodies: int = 2
    large_body_wait_seconds: float = 10.0
    # A page of GET /v1/events stops before its events' JSON passes this size (next_cursor continues).
    page_max_bytes: int = 4 * MiB


# ---- Signed checkpoints (issue 8) --------------------------------------------------------------------


MAX_DEPLOYMENT_LENGTH = 64


@dataclass(frozen=True)
class CheckpointSettings:
    """When and where each log's tree head is signed and published (``ledger.checkpoints``).

    ``dir`` and ``key_file`` default (``None``) to places under ``LEDGER_HOME``: see
    ``Settings.checkpoint_dir`` and ``Settings.checkpoint_key_file``.
    """

    deployment: str = "ledger.local"  # names the deployment in every origin and in the key name
    every: int = 1000  # new events that make a checkpoint due
    seconds: float = 60.0  # or this long since the log's last checkpoint (if it grew)
    dir: Path | None = None
    key_file: Path | None = None
    witness_keys: tuple[str, ...] = ()  # vkeys whose cosignatures are accepted


# ---- Token keys from an identity provider (issue 9) ----------------------------------------------------

MAX_LEEWAY_SECONDS = 300
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class JwksSettings:
    """Where the identity provider's JWKS is read from and how often (``ledger.auth.jwks``).

    At most one of ``file`` and ``url`` is set, and neither beside ``LEDGER_JWT_PUBLIC_KEY_FILE``.
    """

    file: Path | None = None
    url: str | None = None
    refresh_seconds: float = 300.0  # the set is read again this long after the last good read
    # At most one read per this long outside the schedule: a token naming an unknown kid, or a retry after
    # a failed read. A flood of made-up kids costs the identity provider one request per interval.
    min_refresh_seconds: float = 30.0
    # When reads keep failing, the last good set is used this long after it was read; then tokens are
    # refused with 503 (a key the provider withdrew must stop working even while it cannot be asked).
    max_age_seconds: float = 3600.0
    timeout_seconds: float = 5.0  # one read of the URL, connect and response together

    @property
    def configured(self) -> bool:
        """True when tokens are checked against a JWKS rather than one PEM key."""
        return self.file is not None or self.url is not None


# ---- Access anomalies (issue 9) -----------------------------------------------------------------------

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class AnomalySettings:
    """The thresholds of the access-anomaly rules (``ledger.projections.anomalies``; docs/security.md)."""

    # Roles bound to their assignments: their access to an item nobody assigned them is an anomaly.
    assignment_roles: tuple[str, ...] = ("annotator", "reviewer", "physician_reviewer", "expert_adjudicator")
    # Working hours, [start, end) in the tenant's time zone, on these weekdays (0 = Monday).
    timezone: str = "UTC"
    tenant_timezones: Mapping[str, str] = field(default_factory=dict)
    workday_start: time = time(7, 0)
    workday_end: time = time(19, 0)
    working_days: frozenset[int] = frozenset(range(5))
    # A day's accesses above mean + sigmas x standard deviation of the previous window_days.
    volume_sigmas: float = 3.0
    volume_window_days: int = 30
    volume_min_count: int = 50
    volume_min_history_days: int = 7
    bulk_export_records: int = 500  # an export of more records than this
    login_failures: int = 5  # this many failed logins by one actor ...
    login_failure_minutes: int = 15  # ... within this many minutes
    test_set_roles: tuple[str, ...] = ("model_developer",)
    # Roles no rule watches: machine readers whose every read is recorded but is no person's access.
    exempt_roles: tuple[str, ...] = ("witness",)

    def zone(self, tenant: str) -> ZoneInfo:
        """The time zone of ``tenant``'s working hours."""
        return ZoneInfo(self.tenant_timezones.get(tenant, self.timezone))


@dataclass(frozen=True)
class Settings:
    """Every knob the ledger has. Nothing deeper in the code reads the environment."""

    home: Path = field(default_factory=lambda: Path(".ledger").resolve())
    database_url: str | None = None
    kafka_bootstrap: str | None = None
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    host: str = "127.0.0.1"
    port: int = 8000
    jwt_issuer: str = "ledger-dev"
    jwt_audience: str = "ledger"
    jwt_public_key_file: Path | None = None
    jwt_algorithms: tuple[str, ...] = ("EdDSA", "ES256", "RS256")
    master_key_file: Path | None = None
    db_pool_size: int = 8
    # Bounds of the append transaction (seconds): a writer waits this long for a log head another writer
    # holds before answering 503 (retryable), and no statement of the append runs longer.
    db_lock_timeout: float = 5.0
    db_statement_timeout: float = 30.0
    access_log: bool = False
    # The purpose of use a recorded read names when neither X-Purpose-Of-Use nor the token's purpose says.
    purpose_of_use: str = "audit"
    # Tokens whose exp - iat is longer are refused: a stolen long-lived token is a standing key.
    jwt_max_lifetime_seconds: int = 24 * 3600
    limits: Limits = field(default_factory=Limits)
    checkpoints: CheckpointSettings = field(default_factory=CheckpointSettings)
    jwks: JwksSettings = field(default_factory=JwksSettings)
    # Clock skew tolerated on a token's exp, nbf and iat (seconds).
    jwt_leeway_seconds: int = 30
    anomalies: AnomalySettings = field(default_factory=AnomalySettings)
    # The quality-control policy (LEDGER_QC_POLICY, a TOML or YAML file), read once here; empty when unset.
    qc_policy: QcPolicy = field(default_factory=QcPolicy.empty)

    @property
    def checkpoint_dir(self) -> Path:
        """Where signed checkpoints are published as files (``LEDGER_CHECKPOINT_DIR``)."""
        return self.checkpoints.dir or self.home / "checkpoints"

    @property
    def checkpoint_key_file(self) -> Path:
        """The local checkpoint key file (``LEDGER_CHECKPOINT_KEY_FILE``)."""
        from ledger.crypto.checkpoint_keys import default_key_file

        return self.checkpoints.key_file or default_key_file(self.home)

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
            kafka=_kafka(env),
            host=env.get("LEDGER_HOST", "127.0.0.1"),
            port=_int(env, "LEDGER_PORT", 8000),
            jwt_issuer=env.get("LEDGER_JWT_ISSUER", "ledger-dev"),
            jwt_audience=env.get("LEDGER_JWT_AUDIENCE", "ledger"),
            jwt_public_key_file=_path(env, "LEDGER_JWT_PUBLIC_KEY_FILE"),
            jwt_algorithms=algorithms,
            master_key_file=_path(env, "LEDGER_MASTER_KEY_FILE"),
            db_pool_size=_int(env, "LEDGER_DB_POOL_SIZE", 8),
            db_lock_timeout=_seconds(env, "LEDGER_DB_LOCK_TIMEOUT", 5.0),
            db_statement_timeout=_seconds(env, "LEDGER_DB_STATEMENT_TIMEOUT", 30.0),
            access_log=env.get("LEDGER_ACCESS_LOG", "").lower() in _TRUE,
            purpose_of_use=_purpose_of_use(env),
            jwt_max_lifetime_seconds=_positive(
                env, "LEDGER_JWT_MAX_LIFETIME_SECONDS", Settings.jwt_max_lifetime_seconds
            ),
            limits=_limits(env),
            checkpoints=_checkpoints(env),
            jwks=_jwks(env),
            jwt_leeway_seconds=_leeway(env),
            anomalies=_anomalies(env),
            qc_policy=load_policy(path) if (path := _path(env, "LEDGER_QC_POLICY")) else QcPolicy.empty(),
        )


def _purpose_of_use(env: Mapping[str, str]) -> str:
    from ledger.domain.events import PURPOSES_OF_USE

    purpose = env.get("LEDGER_PURPOSE_OF_USE") or Settings.purpose_of_use
    if purpose not in PURPOSES_OF_USE:
        msg = f"LEDGER_PURPOSE_OF_USE must be one of {', '.join(PURPOSES_OF_USE)}, got {purpose!r}"
        raise ConfigurationError(msg)
    return purpose


def _limits(env: Mapping[str, str]) -> Limits:
    """The ``LEDGER_*`` bounds on one request; each must be positive, and a large body fit the limit."""
    default = Limits()
    limits = Limits(
        max_body_bytes=_positive(env, "LEDGER_MAX_BODY_BYTES", default.max_body_bytes),
        large_body_bytes=_positive(env, "LEDGER_LARGE_BODY_BYTES", default.large_body_bytes),
        max_large_bodies=_positive(env, "LEDGER_MAX_LARGE_BODIES", default.max_large_bodies),
        large_body_wait_seconds=_float(
            env, "LEDGER_LARGE_BODY_WAIT_SECONDS", default.large_body_wait_seconds
        ),
        page_max_bytes=_positive(env, "LEDGER_PAGE_MAX_BYTES", default.page_max_bytes),
    )
    if limits.large_body_bytes > limits.max_body_bytes:
        msg = (
            f"LEDGER_LARGE_BODY_BYTES ({limits.large_body_bytes}) must not exceed "
            f"LEDGER_MAX_BODY_BYTES ({limits.max_body_bytes})"
        )
        raise ConfigurationError(msg)
    if limits.large_body_wait_seconds < 0:
        msg = f"LEDGER_LARGE_BODY_WAIT_SECONDS must not be negative, got {limits.large_body_wait_seconds}"
        raise ConfigurationError(msg)
    return limits


def _checkpoints(env: Mapping[str, str]) -> CheckpointSettings:
    """The ``LEDGER_CHECKPOINT_*`` and ``LEDGER_WITNESS_KEYS`` variables, each checked here."""
    from ledger.domain.identifiers import find_direct_identifier
    from ledger.verifier.checkpoint import checkpoint_key_name
    from ledger.verifier.errors import VerifierError
    from ledger.verifier.keys import COSIGNATURE_ED25519, parse_vkey

    default = CheckpointSettings()
    deployment = env.get("LEDGER_DEPLOYMENT") or default.deployment
    try:
        checkpoint_key_name(deployment)
    except VerifierError:
        msg = f"LEDGER_DEPLOYMENT must be a signed-note key name (no spaces, no '+'), got {deployment!r}"
        raise ConfigurationError(msg) from None
    # The name goes into every checkpoint origin and key id the ledger records: bounded so they stay within
    # the recorded events' limits, and never something the direct-identifier screen refuses.
    if len(deployment) > MAX_DEPLOYMENT_LENGTH:
        msg = f"LEDGER_DEPLOYMENT must be at most {MAX_DEPLOYMENT_LENGTH} characters, got {len(deployment)}"
        raise ConfigurationError(msg)
    if kind := find_direct_identifier(deployment):
        msg = f"LEDGER_DEPLOYMENT {deployment!r} looks like {kind}; choose a name without it"
        raise ConfigurationError(msg)
    seconds = _float(env, "LEDGER_CHECKPOINT_SECONDS", default.seconds)
    if not seconds > 0:
        msg = f"LEDGER_CHECKPOINT_SECONDS must be a number of seconds above 0, got {env.get('LEDGER_CHECKPOINT_SECONDS')!r}"
        raise ConfigurationError(msg)
    witnesses = tuple(k.strip() for k in (env.get("LEDGER_WITNESS_KEYS") or "").split(",") if k.strip())
    for text in witnesses:
        try:
            key = parse_vkey(text)
        except VerifierError as exc:
            msg = f"LEDGER_WITNESS_KEYS: {exc.message}"
            raise ConfigurationError(msg) from None
        if key.signature_type != COSIGNATURE_ED25519:
            msg = f"LEDGER_WITNESS_KEYS: {key.label} is not an Ed25519 cosignature/v1 key (type 0x04)"
            raise ConfigurationError(msg)
    return CheckpointSettings(
        deployment=deployment,
        every=_positive(env, "LEDGER_CHECKPOINT_EVERY", default.every),
        seconds=seconds,
        dir=_path(env, "LEDGER_CHECKPOINT_DIR"),
        key_file=_path(env, "LEDGER_CHECKPOINT_KEY_FILE"),
        witness_keys=witnesses,
    )


def _jwks(env: Mapping[str, str]) -> JwksSettings:
    """The ``LEDGER_JWT_JWKS_*`` variables: one key source, an https URL (or loopback), sane intervals."""
    from urllib.parse import urlsplit

    default = JwksSettings()
    url = (env.get("LEDGER_JWT_JWKS_URL") or "").strip() or None
    jwks = JwksSettings(
        file=_path(env, "LEDGER_JWT_JWKS_FILE"),
        url=url,
        refresh_seconds=_float(env, "LEDGER_JWT_JWKS_REFRESH_SECONDS", default.refresh_seconds),
        min_refresh_seconds=_float(env, "LEDGER_JWT_JWKS_MIN_REFRESH_SECONDS", default.min_refresh_seconds),
        max_age_seconds=_float(env, "LEDGER_JWT_JWKS_MAX_AGE_SECONDS", default.max_age_seconds),
        timeout_seconds=_float(env, "LEDGER_JWT_JWKS_TIMEOUT_SECONDS", default.timeout_seconds),
    )
    sources = [
        name
        for name, value in (
            ("LEDGER_JWT_PUBLIC_KEY_FILE", env.get("LEDGER_JWT_PUBLIC_KEY_FILE")),
            ("LEDGER_JWT_JWKS_FILE", jwks.file),
            ("LEDGER_JWT_JWKS_URL", url),
        )
        if value
    ]
    if len(sources) > 1:
        msg = f"set one token key source, not {' and '.join(sources)}"
        raise ConfigurationError(msg)
    if url is not None:
        parts = urlsplit(url)
        # A JWKS fetched in the clear can be replaced on the way: whoever does so signs any token.
        if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS):
            msg = f"LEDGER_JWT_JWKS_URL must be an https URL (http only on localhost), got {url!r}"
            raise ConfigurationError(msg)
        if not parts.hostname:
            msg = f"LEDGER_JWT_JWKS_URL must name a host, got {url!r}"
            raise ConfigurationError(msg)
    for name, value in (
        ("LEDGER_JWT_JWKS_REFRESH_SECONDS", jwks.refresh_seconds),
        ("LEDGER_JWT_JWKS_MIN_REFRESH_SECONDS", jwks.min_refresh_seconds),
        ("LEDGER_JWT_JWKS_MAX_AGE_SECONDS", jwks.max_age_seconds),
        ("LEDGER_JWT_JWKS_TIMEOUT_SECONDS", jwks.timeout_seconds),
    ):
        if not 0 < value < 7 * 86_400:  # also refuses NaN and infinity
            msg = f"{name} must be a number of seconds above 0 and below a week, got {value}"
            raise ConfigurationError(msg)
    if jwks.max_age_seconds < jwks.refresh_seconds:
        msg = (
            f"LEDGER_JWT_JWKS_MAX_AGE_SECONDS ({jwks.max_age_seconds}) must not be shorter than "
            f"LEDGER_JWT_JWKS_REFRESH_SECONDS ({jwks.refresh_seconds}): the set would lapse before its next read"
        )
        raise ConfigurationError(msg)
    return jwks


def _leeway(env: Mapping[str, str]) -> int:
    value = _int(env, "LEDGER_JWT_LEEWAY_SECONDS", Settings.jwt_leeway_seconds)
    if not 0 <= value <= MAX_LEEWAY_SECONDS:
        msg = f"LEDGER_JWT_LEEWAY_SECONDS must be 0 to {MAX_LEEWAY_SECONDS} seconds, got {value}"
        raise ConfigurationError(msg)
    return value


def _anomalies(env: Mapping[str, str]) -> AnomalySettings:
    """The ``LEDGER_ANOMALY_*`` variables, each checked here."""
    default = AnomalySettings()
    zone = env.get("LEDGER_ANOMALY_TIMEZONE") or default.timezone
    _zone("LEDGER_ANOMALY_TIMEZONE", zone)
    tenant_zones: dict[str, str] = {}
    for entry in _names(env, "LEDGER_ANOMALY_TENANT_TIMEZONES", ()):
        tenant, sep, name = entry.partition("=")
        if not sep or not tenant.strip():
            msg = f"LEDGER_ANOMALY_TENANT_TIMEZONES entries must be tenant=Zone/Name, got {entry!r}"
            raise ConfigurationError(msg)
        tenant_zones[tenant.strip()] = _zone("LEDGER_ANOMALY_TENANT_TIMEZONES", name.strip())
    start, end = _hours(env.get("LEDGER_ANOMALY_WORKING_HOURS") or "07:00-19:00")
    sigmas = _float(env, "LEDGER_ANOMALY_VOLUME_SIGMAS", default.volume_sigmas)
    if not 0 <= sigmas < 1000:
        msg = f"LEDGER_ANOMALY_VOLUME_SIGMAS must be a number from 0 to 1000, got {sigmas}"
        raise ConfigurationError(msg)
    return AnomalySettings(
        assignment_roles=_names(env, "LEDGER_ANOMALY_ASSIGNMENT_ROLES", default.assignment_roles),
        timezone=zone,
        tenant_timezones=tenant_zones,
        workday_start=start,
        workday_end=end,
        working_days=_weekdays(env.get("LEDGER_ANOMALY_WORKING_DAYS") or "Mon-Fri"),
        volume_sigmas=sigmas,
        volume_window_days=_positive(env, "LEDGER_ANOMALY_VOLUME_WINDOW_DAYS", default.volume_window_days),
        volume_min_count=_positive(env, "LEDGER_ANOMALY_VOLUME_MIN_COUNT", default.volume_min_count),
        volume_min_history_days=_positive(
            env, "LEDGER_ANOMALY_VOLUME_MIN_HISTORY_DAYS", default.volume_min_history_days
        ),
        bulk_export_records=_positive(env, "LEDGER_ANOMALY_BULK_EXPORT_RECORDS", default.bulk_export_records),
        login_failures=_positive(env, "LEDGER_ANOMALY_LOGIN_FAILURES", default.login_failures),
        login_failure_minutes=_positive(
            env, "LEDGER_ANOMALY_LOGIN_FAILURE_MINUTES", default.login_failure_minutes
        ),
        test_set_roles=_names(env, "LEDGER_ANOMALY_TEST_SET_ROLES", default.test_set_roles),
        exempt_roles=_names(env, "LEDGER_ANOMALY_EXEMPT_ROLES", default.exempt_roles),
    )


def _names(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None:
        return default
    return tuple(n.strip() for n in raw.split(",") if n.strip())


def _zone(variable: str, name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"{variable}: {name!r} is not an IANA time zone name (e.g. Europe/Berlin, UTC)"
        raise ConfigurationError(msg) from None
    return name


def _hours(raw: str) -> tuple[time, time]:
    try:
        start, end = (time.fromisoformat(part.strip()) for part in raw.split("-"))
    except ValueError:
        msg = f"LEDGER_ANOMALY_WORKING_HOURS must be HH:MM-HH:MM, e.g. 07:00-19:00, got {raw!r}"
        raise ConfigurationError(msg) from None
    if not start < end:
        msg = f"LEDGER_ANOMALY_WORKING_HOURS must start before it ends (no overnight span), got {raw!r}"
        raise ConfigurationError(msg)
    return start, end


def _weekdays(raw: str) -> frozenset[int]:
    """``Mon-Fri``, ``Mon,Wed,Fri`` or a mix of both into weekday numbers (0 = Monday)."""
    days: set[int] = set()
    lower = [d.lower() for d in WEEKDAYS]
    for part in (p.strip() for p in raw.split(",") if p.strip()):
        first, _, last = part.partition("-")
        try:
            a, b = lower.index(first.strip().lower()), lower.index((last or first).strip().lower())
        except ValueError:
            msg = f"LEDGER_ANOMALY_WORKING_DAYS must name days as {', '.join(WEEKDAYS)} (e.g. Mon-Fri), got {raw!r}"
            raise ConfigurationError(msg) from None
        if a > b:
            msg = f"LEDGER_ANOMALY_WORKING_DAYS: {part!r} runs backwards (write Mon-Fri, not Fri-Mon)"
            raise ConfigurationError(msg)
        days.update(range(a, b + 1))
    if not days:
        msg = "LEDGER_ANOMALY_WORKING_DAYS must name at least one day"
        raise ConfigurationError(msg)
    return frozenset(days)


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value < 1:
        msg = f"{name} must be at least 1, got {value}"
        raise ConfigurationError(msg)
    return value


def _kafka(env: Mapping[str, str]) -> KafkaSettings:
    """The ``LEDGER_KAFKA_*`` variables (except the bootstrap servers)."""
    from ledger.domain.envelope import TENANT_PATTERN

    default = KafkaSettings()
    client = env.get("LEDGER_KAFKA_CLIENT") or default.client
    if client not in ("kafka-python", "confluent"):
        msg = f"LEDGER_KAFKA_CLIENT must be kafka-python or confluent, got {client!r}"
        raise ConfigurationError(msg)
    protocol = (env.get("LEDGER_KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT").upper()
    if protocol not in _SECURITY_PROTOCOLS:
        msg = f"LEDGER_KAFKA_SECURITY_PROTOCOL must be one of {', '.join(_SECURITY_PROTOCOLS)}, got {protocol!r}"
        raise ConfigurationError(msg)
    rejection_tenant = env.get("LEDGER_KAFKA_REJECTION_TENANT") or default.rejection_tenant
    if not re.fullmatch(TENANT_PATTERN, rejection_tenant):
        msg = f"LEDGER_KAFKA_REJECTION_TENANT must be a tenant name ({TENANT_PATTERN}), got {rejection_tenant!r}"
        raise ConfigurationError(msg)
    batch_size = _int(env, "LEDGER_KAFKA_BATCH_SIZE", default.batch_size)
    if batch_size < 1:
        msg = f"LEDGER_KAFKA_BATCH_SIZE must be at least 1, got {batch_size}"
        raise ConfigurationError(msg)
    security = KafkaSecurity(
        protocol=protocol,
        sasl_mechanism=env.get("LEDGER_KAFKA_SASL_MECHANISM") or None,
        sasl_username=env.get("LEDGER_KAFKA_SASL_USERNAME") or None,
        sasl_password=env.get("LEDGER_KAFKA_SASL_PASSWORD") or None,
        ssl_cafile=_path(env, "LEDGER_KAFKA_SSL_CAFILE"),
        ssl_certfile=_path(env, "LEDGER_KAFKA_SSL_CERTFILE"),
        ssl_keyfile=_path(env, "LEDGER_KAFKA_SSL_KEYFILE"),
        ssl_password=env.get("LEDGER_KAFKA_SSL_PASSWORD") or None,
        ssl_check_hostname=_bool(env, "LEDGER_KAFKA_SSL_CHECK_HOSTNAME", default=True),
    )
    return KafkaSettings(
        topic=env.get("LEDGER_KAFKA_TOPIC") or default.topic,
        dlq_topic=env.get("LEDGER_KAFKA_DLQ_TOPIC") or default.dlq_topic,
        group=env.get("LEDGER_KAFKA_GROUP") or default.group,
        client=client,  # type: ignore[arg-type]  # checked against the Literal's values above
        batch_size=batch_size,
        session_timeout_ms=_int(env, "LEDGER_KAFKA_SESSION_TIMEOUT_MS", default.session_timeout_ms),
        heartbeat_interval_ms=_int(env, "LEDGER_KAFKA_HEARTBEAT_INTERVAL_MS", default.heartbeat_interval_ms),
        rejection_tenant=rejection_tenant,
        status_interval=_float(env, "LEDGER_KAFKA_STATUS_INTERVAL", default.status_interval),
        security=security,
    )


def _bool(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE or raw in _FALSE:
        return raw in _TRUE
    msg = f"{name} must be true or false, got {raw!r}"
    raise ConfigurationError(msg)


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        msg = f"{name} must be a number, got {raw!r}"
        raise ConfigurationError(msg) from None


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    value = _float(env, name, default)
    if not 0 < value < 86_400:  # PostgreSQL reads 0 as "no limit": a bound must be a bound (and finite)
        msg = f"{name} must be a number of seconds above 0 and below 86400, got {env.get(name)!r}"
        raise ConfigurationError(msg)
    return value


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
