"""Key transitions: a new checkpoint key generation vouched for by the one before it, as a signed note.

After ``ledger keys rotate`` a witness (or an auditor) that pinned the old keys can follow the ledger to the
new ones without trusting the server that lists them: the previous generation's Ed25519 key signs a note
naming the new generation and its verifier keys::

    ledger-key-transition/v1
    generation 2
    <vkey of the new Ed25519 key>
    <vkey of the new ML-DSA-44 key>

    — <key name> <base64(key id ‖ signature)>

``follow_transitions`` starts from the keys a verifier already trusts and adds only keys endorsed by one of
them, step by step, so a chain of rotations is followed and a note signed by any other key adds nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ledger.verifier.errors import VerifierError
from ledger.verifier.keys import ED25519, Signer, VerifierKey, parse_vkey
from ledger.verifier.note import Ed25519NoteVerifier, format_note, parse_note, sign_text, verify_note

HEADER = "ledger-key-transition/v1"


def transition_text(generation: int, keys: Sequence[VerifierKey]) -> str:
    """The body of a transition to ``generation`` and its ``keys``."""
    return "".join(f"{line}\n" for line in (HEADER, f"generation {generation}", *(k.vkey for k in keys)))


def sign_transition(generation: int, keys: Sequence[VerifierKey], previous: Signer) -> bytes:
    """The signed note by which ``previous`` (the retiring generation's Ed25519 signer) vouches for ``keys``."""
    text = transition_text(generation, keys)
    return format_note(text, [sign_text(text, previous)])


def endorsed_keys(data: bytes, trusted: Sequence[VerifierKey]) -> list[VerifierKey]:
    """The keys a transition note names, if a ``trusted`` Ed25519 key signed it; ``VerifierError`` if not."""
    note = parse_note(data)
    verify_note(note, [Ed25519NoteVerifier(k) for k in trusted if k.signature_type == ED25519])
    lines = note.text.rstrip("\n").split("\n")
    if len(lines) < 3 or lines[0] != HEADER or not lines[1].startswith("generation "):
        msg = f"the note is not a {HEADER} statement"
        raise VerifierError(msg)
    return [parse_vkey(line) for line in lines[2:]]


def follow_transitions(trusted: Sequence[VerifierKey], notes: Iterable[bytes]) -> list[VerifierKey]:
    """``trusted`` plus every key reachable from it through transition notes (in any order); notes not
    signed by a key reached so far, or unreadable, add nothing."""
    keys = list(trusted)
    pending = list(notes)
    grew = True
    while grew and pending:
        grew = False
        for data in list(pending):
            try:
                named = endorsed_keys(data, keys)
            except VerifierError:
                continue
            pending.remove(data)
            for key in named:
                if key not in keys:
                    keys.append(key)
                    grew = True
    return keys
