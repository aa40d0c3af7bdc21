"""C2SP signed-note: published vectors verify, every malformed or altered note is refused naming the part."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.verifier.checkpoint import Checkpoint, sign_checkpoint, verifier_for
from ledger.verifier.errors import VerifierError
from ledger.verifier.keys import (
    COSIGNATURE_MLDSA44,
    ED25519,
    SeedSigner,
    VerifierKey,
    parse_signer_key,
    parse_vkey,
)
from ledger.verifier.note import (
    MAX_SIGNATURES,
    Ed25519NoteVerifier,
    Note,
    Signature,
    format_note,
    parse_note,
    sign_text,
    verify_note,
)

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "tests/assets/signed-note/vectors.json").read_text())
GO = VECTORS["go_sumdb_note"]
PETER = parse_vkey(GO["peter_vkey"])
ENOCH = parse_vkey(GO["enoch_vkey"])


def opened(data: bytes, *keys: VerifierKey):
    return verify_note(parse_note(data), [verifier_for(k) for k in keys])


# ---- keys --------------------------------------------------------------------------------------------


def test_go_verifier_key_parses_and_formats_back() -> None:
    assert PETER.name == "PeterNeumann"
    assert PETER.key_id == 0xC74F20A3
    assert PETER.signature_type == ED25519
    assert PETER.vkey == GO["peter_vkey"]


def test_every_truncation_and_altered_byte_of_a_vkey_is_refused() -> None:
    vkey = GO["peter_vkey"]
    for i in range(len(vkey) + 1):
        for j in range(i + 1, len(vkey) + 1):
            if (i, j) != (0, len(vkey)):
                with pytest.raises(VerifierError):
                    parse_vkey(vkey[i:j])
    for i in range(len(vkey)):
        mangled = vkey[:i] + chr(ord(vkey[i]) + 1) + vkey[i + 1 :]
        with pytest.raises(VerifierError):
            parse_vkey(mangled)


@pytest.mark.parametrize("vkey", GO["bad_vkeys"])
def test_go_bad_vkeys_are_refused(vkey: str) -> None:
    """A wrong-length key and an unknown algorithm, each with a key id adjusted to match."""
    with pytest.raises(VerifierError, match=r"bytes|not supported|base64"):
        parse_vkey(vkey)


def test_go_signer_key_matches_its_verifier_key_and_every_altered_byte_is_refused() -> None:
    signer = parse_signer_key(GO["peter_skey"])
    assert signer.verifier_key == PETER
    assert signer.signer_key == GO["peter_skey"]
    skey = GO["peter_skey"]
    for i in range(len(skey)):
        with pytest.raises(VerifierError):
            parse_signer_key(skey[:i] + chr(ord(skey[i]) + 1) + skey[i + 1 :])


def test_key_id_is_sha256_of_name_newline_type_and_key() -> None:
    import hashlib

    raw = bytes([ED25519]) + PETER.public_key
    digest = hashlib.sha256(b"PeterNeumann\n" + raw).digest()
    assert PETER.key_id == int.from_bytes(digest[:4], "big")


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\u00a0b", "tab\there"])
def test_invalid_key_names_are_refused(name: str) -> None:
    with pytest.raises(VerifierError, match="key name"):
        SeedSigner(name, ED25519, b"\x01" * 32)


# ---- published notes ---------------------------------------------------------------------------------


def test_go_sign_vector_is_reproduced_byte_for_byte() -> None:
    signer = parse_signer_key(GO["peter_skey"])
    note = Note(GO["text"], (sign_text(GO["text"], signer),))
    assert note.to_bytes().decode() == GO["text"] + "\n" + GO["peter_sig"]


def test_c2sp_example_note_verifies() -> None:
    c2sp = VECTORS["c2sp_signed_note"]
    result = opened(c2sp["note"].encode(), parse_vkey(c2sp["vkey"]))
    assert result.note.text == "This is an example message.\n"
    assert [v.key.name for v in result.verified] == ["example.com/foo"]


def test_one_known_and_one_unknown_signature() -> None:
    data = (GO["text"] + "\n" + GO["peter_sig"] + GO["enoch_sig"]).encode()
    result = opened(data, PETER)
    assert [v.signature.label for v in result.verified] == ["PeterNeumann+c74f20a3"]
    assert [s.label for s in result.unknown] == ["EnochRoot+af0cfe78"]
    both = opened(data, PETER, ENOCH)
    assert len(both.verified) == 2
    assert both.unknown == ()


def test_a_note_no_known_key_signed_is_refused_naming_known_and_found_keys() -> None:
    data = (GO["text"] + "\n" + GO["peter_sig"] + GO["enoch_sig"]).encode()
    with pytest.raises(
        VerifierError, match=r"known: none; signed by: PeterNeumann\+c74f20a3, EnochRoot\+af0cfe78"
    ):
        opened(data)


def test_a_signature_sharing_only_the_name_or_only_the_id_is_unknown_not_failed() -> None:
    other = SeedSigner("PeterNeumann", ED25519, b"\x07" * 32)  # same name, different key id
    data = (GO["text"] + "\n" + sign_text(GO["text"], other).line + "\n" + GO["peter_sig"]).encode()
    result = opened(data, PETER)
    assert [s.label for s in result.unknown] == [other.verifier_key.label]


def test_an_altered_signature_of_a_known_key_refuses_the_note_naming_the_key() -> None:
    sig = GO["peter_sig"]
    data = (GO["text"] + "\n" + sig[:60] + "ABCD" + sig[60:]).encode()
    with pytest.raises(VerifierError, match=r"PeterNeumann\+c74f20a3"):
        opened(data, PETER)


def test_a_tampered_duplicate_of_a_valid_signature_is_not_skipped() -> None:
    sig = GO["peter_sig"]
    tampered = sig[:60] + "ABCD" + sig[64:]
    data = (GO["text"] + "\n" + sig + tampered).encode()
    with pytest.raises(VerifierError, match=r"signature 2 \(PeterNeumann\+c74f20a3\) does not verify"):
        opened(data, PETER)


def test_ambiguous_known_keys_are_refused() -> None:
    clash = VerifierKey("EnochRoot", ED25519, ENOCH.public_key)
    assert clash == ENOCH  # the same key twice is not ambiguous
    opened((GO["text"] + "\n" + GO["enoch_sig"]).encode(), ENOCH, clash)


def test_too_many_signatures_are_refused() -> None:
    data = (GO["text"] + "\n" + GO["peter_sig"] * (MAX_SIGNATURES + 1)).encode()
    with pytest.raises(VerifierError, match="more than the 100"):
        parse_note(data)
    assert MAX_SIGNATURES >= 16  # signed-note: verifiers MUST accept at least 16


@pytest.mark.parametrize(
    ("data", "part"),
    [
        (GO["text"], "blank line"),
        (GO["text"] + "\n", "no signature lines"),
        (GO["text"] + "\n" + GO["peter_sig"][:-1], "newline"),
        ("\x01" + GO["text"] + "\n" + GO["peter_sig"], "line 1 contains the control character 0x01"),
        (GO["text"] + "\n" + GO["peter_sig"] + "Unexpected line.\n", "line 5 is not a signature line"),
        (
            GO["text"]
            + "\n"
            + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
            "line 4",
        ),
        (
            GO["text"]
            + "\n"
            + "- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
            "line 4 is not a signature line",
        ),
        (GO["text"] + "\n" + "— PeterNeumann x08go\n", "line 4 .*base64"),
        (GO["text"] + "\n" + "— PeterNeumann AAAAAA==\n", "shorter than a key id"),
        (GO["text"] + "\n" + "— PeterNeumann\n", "no space"),
        (GO["text"] + "\r\n" + GO["peter_sig"], "control character 0x0d"),
    ],
)
def test_malformed_notes_are_refused_naming_the_part(data: str, part: str) -> None:
    with pytest.raises(VerifierError, match=part):
        parse_note(data.encode())


def test_invalid_utf8_is_refused() -> None:
    with pytest.raises(VerifierError, match="UTF-8"):
        parse_note(b"\xff" + (GO["text"] + "\n" + GO["peter_sig"]).encode())


def test_non_canonical_base64_is_refused() -> None:
    sig = GO["peter_sig"].rstrip("\n")
    # the last base64 digit before '=' carries 2 unused bits: flipping one decodes to the same bytes
    last = sig[-2]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    twin = alphabet[alphabet.index(last) ^ 1]
    with pytest.raises(VerifierError, match="not canonical base64"):
        parse_note((GO["text"] + "\n" + sig[:-2] + twin + "=\n").encode())


def test_format_refuses_what_parse_refuses() -> None:
    sig = Signature("PeterNeumann", 0xC74F20A3, b"\x00" * 64)
    with pytest.raises(VerifierError):
        format_note("no final newline", [sig])
    with pytest.raises(VerifierError, match="control character"):
        format_note("bell\x07\n", [sig])
    with pytest.raises(VerifierError, match="at least one signature"):
        format_note("text\n", [])


def test_every_altered_byte_of_a_signed_note_fails_naming_the_part() -> None:
    data = (GO["text"] + "\n" + GO["peter_sig"]).encode()
    named = re.compile(r"line \d+|PeterNeumann|UTF-8|blank line|signature")
    for i in range(len(data)):
        altered = bytearray(data)
        altered[i] ^= 0x01
        with pytest.raises(VerifierError) as info:
            opened(bytes(altered), PETER)
        assert named.search(str(info.value)), (i, str(info.value))


# ---- Ed25519 and ML-DSA-44 side by side ---------------------------------------------------------------


@pytest.fixture(scope="module")
def dual_signed() -> tuple[bytes, SeedSigner, SeedSigner]:
    ed = SeedSigner("ledger.example/checkpoints", ED25519, bytes(range(32)))
    pq = SeedSigner("ledger.example/checkpoints", COSIGNATURE_MLDSA44, bytes(range(32, 64)))
    checkpoint = Checkpoint("ledger.example/logs/acme", 3, b"\x11" * 32)
    return sign_checkpoint(checkpoint, [ed, pq], 1_800_000_000).to_bytes(), ed, pq


def test_a_note_verifies_with_only_the_ed25519_key(dual_signed) -> None:
    data, ed, pq = dual_signed
    result = opened(data, ed.verifier_key)
    assert [v.key for v in result.verified] == [ed.verifier_key]
    assert [s.label for s in result.unknown] == [pq.verifier_key.label]


def test_a_note_verifies_with_only_the_mldsa44_key(dual_signed) -> None:
    data, ed, pq = dual_signed
    result = opened(data, pq.verifier_key)
    assert [(v.key, v.timestamp) for v in result.verified] == [(pq.verifier_key, 1_800_000_000)]
    assert [s.label for s in result.unknown] == [ed.verifier_key.label]


def test_both_keys_share_a_name_but_not_a_key_id(dual_signed) -> None:
    _, ed, pq = dual_signed
    assert ed.name == pq.name
    assert ed.key_id != pq.key_id


def test_an_ed25519_key_cannot_verify_as_another_signature_type() -> None:
    with pytest.raises(VerifierError, match="not an Ed25519 note key"):
        Ed25519NoteVerifier(SeedSigner("x", COSIGNATURE_MLDSA44, b"\x02" * 32).verifier_key)


# ---- the verifier's dependencies ----------------------------------------------------------------------


def test_the_verifier_imports_nothing_but_the_standard_library_and_cryptography() -> None:
    """Judged on what the imports add to ``sys.modules`` (the interpreter's own start-up hooks aside)."""
    code = (
        "import sys; before = set(sys.modules); "
        "import ledger.verifier.note, ledger.verifier.checkpoint, ledger.verifier.cosignature, "
        "ledger.verifier.keys; print(' '.join(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    loaded = out.stdout.split()
    top_level = {name.split(".")[0] for name in loaded}
    # cryptography's Rust extension registers its OpenSSL bindings as a top-level ``_openssl`` module
    cryptography_parts = {"cryptography", "_openssl", "_rust", "_cffi_backend", "cffi"}
    assert top_level - set(sys.stdlib_module_names) - cryptography_parts - {"ledger"} == set()
    assert "cryptography" in top_level  # the check sees what it should
    ledger_modules = {n for n in loaded if n.startswith("ledger.")}
    assert all(n.startswith(("ledger.verifier", "ledger.domain.merkle")) for n in ledger_modules), (
        ledger_modules
    )
