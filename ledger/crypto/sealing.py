"""Sealing sensitive fields with AES-256-GCM under per-data-subject keys (DESIGN §3).

The associated data binds a sealed value to its tenant, event id and field path, so a sealed value
cannot be moved to another event or field. Erasing a subject's key makes its values unreadable while
every hash and proof still verifies.
"""

from __future__ import annotations

import base64
import copy
import hmac
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.crypto.keys import KeyProvider
from ledger.domain.canonical import canonicalize_json
from ledger.domain.envelope import ReceivedEvent, get_path, normalized
from ledger.domain.errors import SealedValueTampered
from ledger.domain.registry import EVENT_TYPES

ALGORITHM = "A256GCM"
KEY_CACHE_SECONDS = 60.0
"""How long a process keeps a subject key before reading it from the store again (so an erasure made by
another process is honoured here within this time)."""
SubjectRef = tuple[str, str]  # (tenant, data subject)


class SubjectKeyStore(Protocol):
    """Where wrapped per-subject keys are kept (a PostgreSQL table that is not append-only)."""

    def get_or_create(self, subjects: Iterable[SubjectRef], wrap: Any) -> dict[SubjectRef, tuple[str, bytes]]:
        """Return ``(kid, wrapped key)`` per subject, creating keys with ``wrap(raw, context)`` as needed."""

    def get(self, subjects: Iterable[SubjectRef]) -> dict[SubjectRef, tuple[str, bytes]]:
        """Return ``(kid, wrapped key)`` for the subjects whose keys exist and are not erased."""


class Sealer:
    """Seals and unseals the sensitive fields of events; computes keyed content digests."""

    def __init__(
        self, provider: KeyProvider, store: SubjectKeyStore, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._provider = provider
        self._store = store
        # Keyed once; each digest continues a copy (an HMAC's key setup is a third of its cost here).
        self._digest = hmac.new(provider.derive(b"ledger content digest v1"), digestmod="sha256")
        self._keys: dict[SubjectRef, tuple[str, bytes]] = {}
        self._loaded: dict[SubjectRef, float] = {}  # when each cached key was read from the store
        self._loading = threading.Lock()
        self._clock = clock

    def content_digest(self, event: ReceivedEvent) -> bytes:
        """A keyed digest of what the producer sent, to recognise a re-post whatever its content mode.

        The event is normalised (CloudEvents defaults, extension values as strings), and each sensitive value
        is replaced by an HMAC under its subject's key: once that key is erased, the digest no longer lets
        anyone confirm a guessed value. The canonical bytes validation computed (``event.canonical``) are
        hashed as they are when nothing needed changing. Call after ``seal``, which loads the subject keys.
        """
        form = normalized(event.raw)
        if event.has_sensitive:
            form = self._blinded(form, event)
        mac = self._digest.copy()
        mac.update(event.canonical if form is event.raw else canonicalize_json(form))
        return mac.digest()

    def _blinded(self, form: dict[str, Any], event: ReceivedEvent) -> dict[str, Any]:
        _, key = self._keys[(event.tenant, event.data_subject)]
        out = {**form, "data": _copy_along(form["data"], event.event_type.sensitive_paths)}
        for parent, name in _sensitive_slots(out["data"], event.event_type.sensitive_paths):
            parent[name] = {"blinded": hmac.digest(key, msgspec.json.encode(parent[name]), "sha256").hex()}
        return out

    def seal(self, events: list[ReceivedEvent]) -> list[dict[str, Any]]:
        """The stored form of each event: the event as received with sensitive values sealed.

        An event with nothing to seal is returned as the very same object (callers rely on ``is``).
        """
        self._load_keys({(e.tenant, e.data_subject) for e in events if e.has_sensitive}, create=True)
        return [self._seal_one(e) if e.has_sensitive else e.raw for e in events]

    def _seal_one(self, event: ReceivedEvent) -> dict[str, Any]:
        kid, key = self._keys[(event.tenant, event.data_subject)]
        cipher = AESGCM(key)
        stored = {**event.raw, "data": _copy_along(event.raw["data"], event.event_type.sensitive_paths)}
        for path in event.event_type.sensitive_paths:
            for parent, name in _sensitive_slots(stored["data"], (path,)):
                nonce = os.urandom(12)
                ct = cipher.encrypt(
                    nonce, msgspec.json.encode(parent[name]), _aad(event.tenant, event.id, path)
                )
                parent[name] = {
                    "sealed": {"kid": kid, "alg": ALGORITHM, "nonce": _b64(nonce), "ct": _b64(ct)}
                }
        return stored

    def unseal(self, stored: dict[str, Any], *, erased: str = "[erased]") -> dict[str, Any]:
        """The event with sealed values opened; values whose key was erased read as ``erased``."""
        event_type = EVENT_TYPES.get(str(stored.get("type")))
        if event_type is None or not event_type.sensitive_paths:
            return stored
        opened = copy.deepcopy(stored)
        tenant, event_id = str(stored["tenant"]), str(stored["id"])
        for path in event_type.sensitive_paths:
            parent = get_path(opened["data"], path[:-1]) if len(path) > 1 else opened["data"]
            box = parent.get(path[-1]) if isinstance(parent, dict) else None
            if not (isinstance(box, dict) and isinstance(box.get("sealed"), dict)):
                continue
            assert isinstance(parent, dict)
            parent[path[-1]] = self._open(box["sealed"], tenant, event_id, path, erased)
        return opened

    def _open(
        self, sealed: dict[str, str], tenant: str, event_id: str, path: tuple[str, ...], erased: str
    ) -> Any:
        key = self._key_by_kid(tenant, sealed["kid"])
        if key is None:
            return erased
        try:
            plaintext = AESGCM(key).decrypt(
                _unb64(sealed["nonce"]), _unb64(sealed["ct"]), _aad(tenant, event_id, path)
            )
        except InvalidTag:
            msg = f"sealed value at data.{'.'.join(path)} of event {event_id} does not open: it was moved or altered"
            raise SealedValueTampered(msg) from None
        return json.loads(plaintext)

    def _key_by_kid(self, tenant: str, kid: str) -> bytes | None:
        _, sep, subject = kid.partition(":")  # a kid names its subject (see new_subject_key)
        if not sep:
            return None
        self._load_keys({(tenant, subject)}, create=False)
        found = self._keys.get((tenant, subject))
        return found[1] if found and found[0] == kid else None

    def forget(self, tenant: str, subject: str) -> None:
        """Drop a cached key (after erasure)."""
        self._keys.pop((tenant, subject), None)
        self._loaded.pop((tenant, subject), None)

    def _cached(self, subject: SubjectRef, now: float) -> bool:
        # A key is read from the store again after KEY_CACHE_SECONDS: an erasure made by another process
        # reaches this one within that time (it seals nothing new under the erased key after it).
        return subject in self._keys and now - self._loaded.get(subject, float("-inf")) < KEY_CACHE_SECONDS

    def _load_keys(self, subjects: set[SubjectRef], *, create: bool) -> None:
        now = self._clock()
        if all(self._cached(s, now) for s in subjects):
            return
        with self._loading:  # request threads share one cache
            missing = [s for s in subjects if not self._cached(s, now)]
            if not missing:
                return
            store = self._store
            found = store.get_or_create(missing, self._provider.wrap) if create else store.get(missing)
            for ref, (kid, wrapped) in found.items():
                self._keys[ref] = (kid, self._provider.unwrap(wrapped, _wrap_context(*ref)))
                self._loaded[ref] = now
            for ref in missing:
                if ref not in found:  # erased (or never made): it must not linger in the cache
                    self._keys.pop(ref, None)
                    self._loaded.pop(ref, None)


def new_subject_key(tenant: str, subject: str, wrap: Any) -> tuple[str, bytes]:
    """A fresh key id and wrapped AES-256 key for one data subject."""
    kid = f"{os.urandom(6).hex()}:{subject}"
    return kid, wrap(AESGCM.generate_key(bit_length=256), _wrap_context(tenant, subject))


def _copy_along(data: dict[str, Any], paths: tuple[tuple[str, ...], ...]) -> dict[str, Any]:
    """A copy of ``data`` in which every dict on a sealed path is new, so sealing never touches the input."""
    out = dict(data)
    for path in paths:
        node = out
        for step in path[:-1]:
            child = node.get(step)
            if not isinstance(child, dict):
                break
            node[step] = dict(child)
            node = node[step]
    return out


def _sensitive_slots(
    data: dict[str, Any], paths: tuple[tuple[str, ...], ...]
) -> list[tuple[dict[str, Any], str]]:
    """The (parent dict, key) of each sensitive value present in ``data``."""
    slots = []
    for path in paths:
        parent = get_path(data, path[:-1]) if len(path) > 1 else data
        if isinstance(parent, dict) and parent.get(path[-1]) is not None:
            slots.append((parent, path[-1]))
    return slots


def _wrap_context(tenant: str, subject: str) -> bytes:
    return msgspec.json.encode(["ledger subject key v1", tenant, subject])


def _aad(tenant: str, event_id: str, path: tuple[str, ...]) -> bytes:
    # A JSON array keeps the parts unambiguous whatever characters an id contains.
    return msgspec.json.encode(["ledger sealed value v1", tenant, event_id, "data." + ".".join(path)])


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
