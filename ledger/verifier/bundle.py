"""Verify an evidence bundle offline: no database, no network, nothing beyond the standard library and ``cryptography``.

``verify_bundle`` runs every check and reports each one, so a report says everything that failed, not only
the first thing: each checkpoint's signatures, signing time, key window, origin and witness cosignatures;
the consistency of consecutive checkpoints of a log; each event's canonical bytes and inclusion proof; the
scope; and the seal over the members no proof covers. Keys supplied by the bundle prove its integrity;
keys the auditor pins (``trusted_keys``) prove its origin, and the report says which were used.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ledger.domain.logs import log_for
from ledger.domain.merkle import ProofError, leaf_hash, verify_consistency, verify_inclusion
from ledger.verifier.bundle_format import (
    FORMAT,
    SEALED_MEMBERS,
    Bundle,
    BundleCheckpoint,
    BundleEvent,
    BundleUnusable,
    read_bundle,
    seal_text,
)
from ledger.verifier.checkpoint import SignedCheckpoint, check_key_windows, open_checkpoint, origin_for
from ledger.verifier.cosignature import verify_cosignatures
from ledger.verifier.errors import VerifierError
from ledger.verifier.keys import ED25519, TYPE_NAMES, KeyWindow, VerifierKey, find_key, key_valid_at
from ledger.verifier.note import Ed25519NoteVerifier, verify_note

KeySource = Literal["pinned", "bundle", "pinned-checkpoints"]
"""Which keys a verdict rests on: the auditor's (``pinned``), the bundle's own (``bundle``: integrity only),
or pinned for the checkpoints while the seal (scope, key windows, signing times) verified only under a key
the bundle supplies (``pinned-checkpoints``: each event's inclusion is proven, what the seal attests is not)."""
_CHECKPOINT_KEY_SUFFIX = "/checkpoints"


@dataclass(frozen=True)
class Check:
    """One check of one part of the bundle, and what it found."""

    part: str
    check: str
    ok: bool
    detail: str

    @property
    def line(self) -> str:
        """``ok      part check: detail`` or ``FAILED  …``, one line of the printed report."""
        return f"{'ok    ' if self.ok else 'FAILED'}  {self.part} {self.check}: {self.detail}"


@dataclass(frozen=True)
class BundleReport:
    """Every check run on a bundle; ``verified`` only if it was readable and every check passed."""

    usable: bool
    key_source: KeySource
    witness_source: KeySource
    checks: tuple[Check, ...]
    scope: dict[str, Any] | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        """True if the bundle was readable and every check passed."""
        return self.usable and all(c.ok for c in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        """The checks that failed, in the order they ran."""
        return tuple(c for c in self.checks if not c.ok)

    @property
    def summary(self) -> str:
        """One sentence: the verdict and which keys it rests on."""
        if not self.usable:
            return f"UNUSABLE: not a {FORMAT} bundle this verifier can read ({len(self.checks)} problem(s))"
        n = self.counts
        what = f"{n.get('events', 0)} event(s), {n.get('checkpoints', 0)} checkpoint(s) of {n.get('logs', 0)} log(s)"
        keys = {
            "pinned": "pinned keys (origin proven)",
            "pinned-checkpoints": "pinned keys for the checkpoints (each event's inclusion proven), but the seal "
            "(scope, key windows, signing times) only under a key the bundle supplies: pin the ledger's "
            "Ed25519 key too to prove it",
            "bundle": "keys supplied by the bundle (integrity only: pin the ledger's key with --key to prove origin)",
        }[self.key_source]
        if self.verified:
            return f"VERIFIED: {what}, under {keys}"
        return f"FAILED: {len(self.failures)} of {len(self.checks)} checks failed on {what}, under {keys}"

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (``--json``)."""
        return {
            "verified": self.verified,
            "usable": self.usable,
            "key_source": self.key_source,
            "witness_source": self.witness_source,
            "scope": self.scope,
            "counts": self.counts,
            "summary": self.summary,
            "checks": [
                {"part": c.part, "check": c.check, "ok": c.ok, "detail": c.detail} for c in self.checks
            ],
        }


def verify_bundle(
    data: bytes,
    *,
    trusted_keys: Sequence[VerifierKey | KeyWindow] | None = None,
    witness_keys: Sequence[VerifierKey] | None = None,
) -> BundleReport:
    """Check a bundle completely and report every check.

    ``trusted_keys``: the ledger's checkpoint keys the auditor pins; when given, only they are trusted (a bare
    key gets the bundle's validity window for it, which can only refuse more). ``witness_keys``: witnesses
    the auditor pins; when given, every checkpoint must carry a valid cosignature by one of them.
    """
    key_source: KeySource = "bundle" if trusted_keys is None else "pinned"
    witness_source: KeySource = "bundle" if witness_keys is None else "pinned"
    try:
        bundle = read_bundle(data)
    except BundleUnusable as exc:
        checks = tuple(Check("bundle", "structure", ok=False, detail=p) for p in exc.problems)
        return BundleReport(False, key_source, witness_source, checks)
    run = _Run(bundle, trusted_keys, witness_keys)
    run.checkpoints()
    run.consistency()
    run.events()
    run.scope()
    if not run.seal() and key_source == "pinned":
        key_source = "pinned-checkpoints"
    counts = {
        "events": len(bundle.events),
        "checkpoints": len(bundle.checkpoints),
        "logs": len({c.log for c in bundle.checkpoints}),
    }
    return BundleReport(True, key_source, witness_source, tuple(run.checks), bundle.scope, counts)


class _Run:
    """The checks of one bundle, appended to ``checks`` as they run."""

    def __init__(
        self,
        bundle: Bundle,
        trusted: Sequence[VerifierKey | KeyWindow] | None,
        witnesses: Sequence[VerifierKey] | None,
    ) -> None:
        self.bundle = bundle
        self.checks: list[Check] = []
        listed = {k.key: KeyWindow(k.key, k.created_at, k.retired_at) for k in bundle.keys}
        if trusted is None:
            self.keys = list(listed)
            self.windows = list(listed.values())
        else:
            self.keys = [k.key if isinstance(k, KeyWindow) else k for k in trusted]
            # A pinned window is the auditor's own; a bare pinned key takes the bundle's window for it,
            # which can only refuse more than no window would.
            self.windows = [
                k if isinstance(k, KeyWindow) else listed[k] for k in trusted if _has_window(k, listed)
            ]
        self.pinned_keys = trusted is not None
        self.witnesses = list(bundle.witness_keys if witnesses is None else witnesses)
        self.witnesses_required = witnesses is not None
        #: (log, size) -> the root of a cited checkpoint, first citation only
        self.roots: dict[tuple[str, int], bytes] = {}

    def add(self, part: str, check: str, detail: str, *, ok: bool = True) -> None:
        self.checks.append(Check(part, check, ok=ok, detail=detail))

    def fail(self, part: str, check: str, detail: str) -> None:
        self.add(part, check, detail, ok=False)

    # ---- checkpoints --------------------------------------------------------------------------------

    def checkpoints(self) -> None:
        for i, cp in enumerate(self.bundle.checkpoints):
            part = f"checkpoints[{i}] ({cp.name})"
            if (cp.log, cp.checkpoint.size) in self.roots:
                self.fail(part, "citation", f"checkpoint {cp.name} is cited twice")
                continue
            self.roots[(cp.log, cp.checkpoint.size)] = cp.checkpoint.root
            try:
                signed = open_checkpoint(cp.note.to_bytes(), self.keys)
            except VerifierError as exc:
                self.fail(part, "signature", exc.message)
                continue
            self.add(part, "signature", self._signed_by(signed))
            self._signing_time(part, cp, signed)
            self._origin(part, cp, signed)
            self._witnesses(part, cp)

    def _signed_by(self, signed: SignedCheckpoint) -> str:
        source = "pinned" if self.pinned_keys else "supplied by the bundle"
        by = ", ".join(f"{v.key.label} ({TYPE_NAMES[v.key.signature_type]})" for v in signed.log_signatures)
        return f"verified by {by}, key(s) {source}"

    def _signing_time(self, part: str, cp: BundleCheckpoint, signed: SignedCheckpoint) -> None:
        stated = signed.signed_at  # what a verified ML-DSA-44 signature says
        if stated is not None and stated != cp.signed_at:
            self.fail(part, "signing time", f"signed_at says {_iso(cp.signed_at)}, the ML-DSA-44 signature"
                      f" says {_iso(stated)}")  # fmt: skip
            return
        how = (
            "stated by its ML-DSA-44 signature" if stated else "as the bundle states (no ML-DSA-44 key known)"
        )
        try:
            check_key_windows(signed, self.windows, stated or cp.signed_at)
        except VerifierError as exc:
            self.fail(part, "key window", exc.message)
            return
        judged = [v.key.label for v in signed.log_signatures if any(w.key == v.key for w in self.windows)]
        window = f"within the window of {', '.join(judged)}" if judged else "no key window known to judge it"
        self.add(part, "key window", f"signed at {_iso(stated or cp.signed_at)} ({how}), {window}")

    def _origin(self, part: str, cp: BundleCheckpoint, signed: SignedCheckpoint) -> None:
        origin = cp.checkpoint.origin
        for v in signed.log_signatures:
            name = v.key.name
            deployment = name.removesuffix(_CHECKPOINT_KEY_SUFFIX)
            if deployment == name or not deployment:
                self.fail(
                    part, "origin", f"key {v.key.label} is not named <deployment>{_CHECKPOINT_KEY_SUFFIX}"
                )
                return
            try:
                expected = origin_for(deployment, cp.log)
            except VerifierError as exc:
                self.fail(part, "origin", exc.message)
                return
            if origin != expected:
                self.fail(
                    part, "origin", f"origin {origin!r} does not name log {cp.log!r}: expected {expected!r}"
                )
                return
        self.add(part, "origin", f"{origin} names log {cp.log}")

    def _witnesses(self, part: str, cp: BundleCheckpoint) -> None:
        mine = [s for s in cp.note.signatures if find_key(self.witnesses, s.name, s.key_id) is not None]
        if not mine:
            if self.witnesses_required:
                pinned = ", ".join(k.label for k in self.witnesses) or "none"
                self.fail(part, "witnesses", f"no cosignature by a pinned witness ({pinned})")
            elif self.witnesses:
                self.add(part, "witnesses", "not cosigned by any witness the bundle lists")
            return
        try:
            verified = verify_cosignatures(cp.note, self.witnesses)
        except VerifierError as exc:
            self.fail(part, "witnesses", exc.message)
            return
        source = "pinned" if self.witnesses_required else "listed by the bundle"
        self.add(part, "witnesses", f"cosigned by {', '.join(v.key.label for v in verified)} ({source})")

    # ---- consistency --------------------------------------------------------------------------------

    def consistency(self) -> None:
        sizes: dict[str, list[int]] = {}
        for log, size in self.roots:
            sizes.setdefault(log, []).append(size)
        wanted = {
            (log, old, new): None
            for log, found in sizes.items()
            for old, new in itertools.pairwise(sorted(found))
        }
        given: dict[tuple[str, int, int], int] = {}
        for i, c in enumerate(self.bundle.consistency):
            key = (c.log, c.old_size, c.new_size)
            part = f"consistency[{i}] ({c.log}@{c.old_size} -> {c.log}@{c.new_size})"
            if key not in wanted:
                self.fail(part, "citation", "it does not join two consecutive cited checkpoints of its log")
            elif key in given:
                self.fail(part, "citation", f"it repeats consistency[{given[key]}]")
            else:
                given[key] = i
        for log, old, new in wanted:
            index = given.get((log, old, new))
            if index is None:
                self.fail(
                    f"checkpoints {log}@{old} -> {log}@{new}", "consistency", "the bundle holds no proof"
                )
                continue
            proof = self.bundle.consistency[index]
            part = f"consistency[{index}] ({log}@{old} -> {log}@{new})"
            try:
                verify_consistency(old, new, self.roots[(log, old)], self.roots[(log, new)], proof.hashes)
            except ProofError as exc:
                self.fail(part, "consistency", f"checkpoint {log}@{new} does not extend {log}@{old}: {exc}")
                continue
            self.add(part, "consistency", f"checkpoint {log}@{new} extends {log}@{old}")

    # ---- events -------------------------------------------------------------------------------------

    def events(self) -> None:
        seen: dict[tuple[str, int], int] = {}
        for i, event in enumerate(self.bundle.events):
            part = f"events[{i}] ({event.name})"
            if (event.log, event.position) in seen:
                self.fail(part, "citation", f"it repeats events[{seen[(event.log, event.position)]}]")
                continue
            seen[(event.log, event.position)] = i
            self._canonical(part, event)
            self._inclusion(part, event)

    def _canonical(self, part: str, event: BundleEvent) -> None:
        try:
            doc = json.loads(event.canonical.decode("utf-8"))
        except ValueError:  # UnicodeDecodeError is one
            self.fail(part, "canonical bytes", "they are not UTF-8 JSON")
            return
        if not isinstance(doc, dict):
            self.fail(part, "canonical bytes", "they are not a JSON object")
            return
        wrong = [
            f"{member} is {doc.get(member)!r}, the bundle says {claimed!r}"
            for member, claimed in (("log", event.log), ("position", event.position))
            if doc.get(member) != claimed or isinstance(doc.get(member), bool)
        ]
        if wrong:
            self.fail(part, "canonical bytes", "; ".join(wrong))
            return
        about = _document(event)["event"]
        tenant = about.get("tenant")
        if not isinstance(tenant, str) or log_for(tenant) != event.log:  # the rule the ledger files it by
            self.fail(
                part, "canonical bytes", f"an event of tenant {tenant!r} does not belong in log {event.log}"
            )
            return
        detail = (
            f"log {event.log}, position {event.position}, type {about.get('type')!r}, id {about.get('id')!r}"
        )
        self.add(part, "canonical bytes", detail)

    def _inclusion(self, part: str, event: BundleEvent) -> None:
        name = f"{event.log}@{event.tree_size}"
        root = self.roots.get((event.log, event.tree_size))
        if root is None:
            self.fail(part, "inclusion", f"it cites checkpoint {name}, which the bundle does not hold")
            return
        try:
            verify_inclusion(
                event.position, event.tree_size, leaf_hash(event.canonical), event.inclusion, root
            )
        except ProofError as exc:
            self.fail(
                part, "inclusion", f"inclusion proof does not lead to the root of checkpoint {name}: {exc}"
            )
            return
        self.add(part, "inclusion", f"leaf {leaf_hash(event.canonical).hex()} is in checkpoint {name}")

    # ---- scope and seal -----------------------------------------------------------------------------

    def scope(self) -> None:
        scope, docs = self.bundle.scope, [_document(e) for e in self.bundle.events]
        if "events" in scope:
            ids = {d["event"].get("id") for d in docs}
            missing = [i for i in scope["events"] if i not in ids]
            if missing:
                self.fail(
                    "scope", "completeness", f"requested event(s) {', '.join(missing)} are not in the bundle"
                )
            else:
                self.add(
                    "scope", "completeness", f"all {len(scope['events'])} requested events are in the bundle"
                )
        elif "log" in scope:
            held = {e.position for e in self.bundle.events if e.log == scope["log"]}
            missing_positions = [p for p in range(scope["from"], scope["to"] + 1) if p not in held]
            if missing_positions:
                shown = ", ".join(map(str, missing_positions[:10]))
                self.fail(
                    "scope", "completeness", f"positions {shown} of log {scope['log']} are not in the bundle"
                )
            else:
                self.add(
                    "scope",
                    "completeness",
                    f"positions {scope['from']}..{scope['to']} of {scope['log']} are all held",
                )
        elif "release" in scope:
            dataset, _, release = scope["release"].partition("@")
            found = any(
                d["event"].get("type") == "dataset.release_created"
                and isinstance(d["event"].get("data"), dict)
                and (d["event"]["data"].get("dataset"), d["event"]["data"].get("release"))
                == (dataset, release)
                for d in docs
            )
            if found:
                self.add(
                    "scope",
                    "completeness",
                    f"the dataset.release_created event of {scope['release']} is held",
                )
            else:
                self.fail(
                    "scope", "completeness", f"no dataset.release_created event of {scope['release']} is held"
                )
        else:
            self.add(
                "scope",
                "completeness",
                f"item {scope['item']}: which events belong to it is attested by the seal",
            )

    def seal(self) -> bool:
        """Check the seal; true when its signature verified under a pinned key."""
        expected = seal_text(self.bundle.digests).split("\n")
        found = self.bundle.seal.text.split("\n")
        changed = [
            m for m, want in zip(("format", *SEALED_MEMBERS), expected, strict=False) if want not in found
        ]
        if changed:
            self.fail("seal", "digests", f"member(s) {', '.join(changed)} differ from what the seal attests")
        elif found != expected:
            self.fail("seal", "digests", "the seal's text is not the one this bundle's members give")
        else:
            self.add("seal", "digests", "every member is the one the seal attests")
        keys = [k for k in self.keys if k.signature_type == ED25519]
        source = "pinned"
        if not keys:  # an auditor pinning only the ML-DSA-44 key: the seal proves integrity only
            keys, source = [k.key for k in self.bundle.keys if k.key.signature_type == ED25519], "bundle"
        try:
            result = verify_note(self.bundle.seal, [Ed25519NoteVerifier(k) for k in keys])
        except VerifierError as exc:
            self.fail("seal", "signature", exc.message)
            return False
        key = result.verified[0].key
        window = next((w for w in self.windows if w.key == key), None)
        when = self.bundle.created_at
        if window is not None and not key_valid_at(window, when):
            self.fail("seal", "key window", f"created_at {_iso(when)} is outside the window of {key.label}")
            return False
        pinned = source == "pinned" and self.pinned_keys
        label = "pinned" if pinned else "supplied by the bundle"
        self.add("seal", "signature", f"verified by {key.label} (key {label}), made at {_iso(when)}")
        return pinned


def _has_window(key: VerifierKey | KeyWindow, listed: dict[VerifierKey, KeyWindow]) -> bool:
    return isinstance(key, KeyWindow) or key in listed


def _document(event: BundleEvent) -> dict[str, Any]:
    """The stored document of an event, or an empty one when its bytes are not a ledger document."""
    try:
        doc = json.loads(event.canonical.decode("utf-8"))
    except ValueError:
        return {"event": {}}
    if not isinstance(doc, dict) or not isinstance(doc.get("event"), dict):
        return {"event": {}}
    return doc


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
