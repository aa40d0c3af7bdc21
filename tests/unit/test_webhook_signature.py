"""CVAT's ``X-Signature-256`` header, checked as CVAT computes it."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from ledger.domain.errors import AuthenticationFailed
from ledger.webhooks.signature import signature, verify_signature
from tests import webhook_fixtures

SECRET = "Zq3-secret-printed-by-ledger-sources-add"


def cvat_signed(secret: str, payload: dict[str, object]) -> tuple[bytes, str]:
    """The body and header CVAT sends: cvat/apps/webhooks/utils.py ``perform_webhook_request`` signs
    ``json.dumps(payload).encode("utf-8")`` with ``hmac.new(webhook.secret.encode("utf-8"), ...,
    digestmod=hashlib.sha256).hexdigest()`` behind ``"sha256="``, and posts ``json=payload``, which
    ``requests`` encodes with the same ``json.dumps`` defaults."""
    body = json.dumps(payload).encode("utf-8")
    header = "sha256=" + hmac.new(secret.encode("utf-8"), body, digestmod=hashlib.sha256).hexdigest()
    return body, header


def refusal(secret: str, body: bytes, header: str | None) -> str:
    with pytest.raises(AuthenticationFailed) as caught:
        verify_signature(secret, body, header)
    detail = caught.value.detail
    assert "ledger sources add cvat" in detail
    assert "Secret field" in detail
    digits = (header or "").removeprefix("sha256=").strip()
    if digits:  # what the header held is never repeated (its bare prefix is named as what is expected)
        assert digits not in detail
    return detail


def test_the_documented_vector() -> None:
    # docs.cvat.ai, Webhooks, "Webhook secret": an empty body with secret "mykey" (the page prints the
    # hex digest alone; CVAT's code sends it behind "sha256=").
    expected = "sha256=e1b24265bf2e0b20c81837993b4f1415f7b68c503114d100a40601eca6a2745f"
    assert signature("mykey", b"") == expected
    verify_signature("mykey", b"", expected)


@pytest.mark.parametrize("name", ["ping", "create-task", "update-job-completed", "delete-task"])
def test_a_delivery_signed_as_cvat_signs_it_verifies(name: str) -> None:
    body, header = cvat_signed(SECRET, webhook_fixtures.load("cvat", name))
    assert signature(SECRET, body) == header
    verify_signature(SECRET, body, header)


def test_uppercase_hex_digits_verify() -> None:
    # CVAT sends hexdigest() (lowercase); the digest is compared, not its spelling.
    body, header = cvat_signed(SECRET, webhook_fixtures.load("cvat", "ping"))
    verify_signature(SECRET, body, "sha256=" + header.removeprefix("sha256=").upper())


def test_another_secret_is_refused() -> None:
    body, header = cvat_signed("another-secret", webhook_fixtures.load("cvat", "ping"))
    assert "does not match" in refusal(SECRET, body, header)


def test_one_changed_body_byte_is_refused() -> None:
    body, header = cvat_signed(SECRET, webhook_fixtures.load("cvat", "update-job-completed"))
    changed = body.replace(b'"completed"', b'"complete\\u0064"', 1)  # the same JSON value, other bytes
    assert changed != body
    assert json.loads(changed) == json.loads(body)
    assert "does not match" in refusal(SECRET, changed, header)
    flipped = bytes([body[0] ^ 0x01]) + body[1:]
    refusal(SECRET, flipped, header)


@pytest.mark.parametrize("header", [None, ""])
def test_a_missing_header_is_refused(header: str | None) -> None:
    assert "no X-Signature-256 header" in refusal(SECRET, b"{}", header)


def test_a_digest_without_the_prefix_is_refused() -> None:
    body, header = cvat_signed(SECRET, {"event": "ping"})
    assert "does not start with 'sha256='" in refusal(SECRET, body, header.removeprefix("sha256="))
    assert "does not start" in refusal(SECRET, body, "SHA256=" + header.removeprefix("sha256="))
    assert "does not start" in refusal(SECRET, body, " " + header)


@pytest.mark.parametrize(
    "digest",
    [
        "g" * 64,  # not hex
        "e1b24265bf2e0b20c81837993b4f1415f7b68c503114d100a40601eca6a2745",  # 63 digits
        "e1b24265bf2e0b20c81837993b4f1415f7b68c503114d100a40601eca6a2745f0",  # 65 digits
        "e1b24265bf2e0b20c81837993b4f1415f7b68c503114d100a40601eca6a2745 ",  # a space
        "",
    ],
)
def test_a_malformed_digest_is_refused(digest: str) -> None:
    assert "64 hex digits" in refusal("mykey", b"", "sha256=" + digest)


def test_a_source_without_a_secret_checks_nothing() -> None:
    # An empty key is one anybody can sign with.
    body, header = cvat_signed("", {"event": "ping"})
    assert "no secret" in refusal("", body, header)
