"""CVAT's webhook signature: ``X-Signature-256: sha256=<hex HMAC-SHA256 of the request body>``.

CVAT (``cvat/apps/webhooks/utils.py``, ``perform_webhook_request``) signs ``json.dumps(payload)`` encoded
as UTF-8 with the webhook's secret and posts that same text (``requests``' ``json=``), so the signature is
of the exact bytes received: it is checked against the raw body, before anything is parsed.
"""

from __future__ import annotations

import hashlib
import hmac
import string

from ledger.domain.errors import AuthenticationFailed

HEADER = "X-Signature-256"
PREFIX = "sha256="
_HEX_DIGITS = frozenset(string.hexdigits)
_DIGEST_HEX_LENGTH = 2 * hashlib.sha256().digest_size
_WHAT_TO_DO = (
    "set the secret printed by `ledger sources add cvat` (or `ledger sources rotate`) in the Secret field "
    "of the CVAT webhook"
)


def signature(secret: str, body: bytes) -> str:
    """The ``X-Signature-256`` value CVAT sends for ``body`` when the webhook's secret is ``secret``."""
    return PREFIX + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> None:
    """Raise ``AuthenticationFailed`` unless ``header`` is ``sha256=`` and the hex HMAC-SHA256 of ``body``
    under ``secret``.

    The hex digits may be of either case (CVAT sends lowercase; the digest, not its spelling, is what is
    compared, in constant time). A refusal says what is wrong and what to do, never what the header held.
    """
    if not secret:
        msg = f"this source has no secret to check the {HEADER} header with; {_WHAT_TO_DO}"
        raise AuthenticationFailed(msg)
    if not header:
        msg = f"the request carries no {HEADER} header, so CVAT signed it with no secret; {_WHAT_TO_DO}"
        raise AuthenticationFailed(msg)
    if not header.startswith(PREFIX):
        msg = f"the {HEADER} header does not start with '{PREFIX}'; {_WHAT_TO_DO}"
        raise AuthenticationFailed(msg)
    given = header[len(PREFIX) :]
    if len(given) != _DIGEST_HEX_LENGTH or not _HEX_DIGITS.issuperset(given):
        msg = f"the {HEADER} header is not '{PREFIX}' and {_DIGEST_HEX_LENGTH} hex digits; {_WHAT_TO_DO}"
        raise AuthenticationFailed(msg)
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    if not hmac.compare_digest(bytes.fromhex(given), expected):
        msg = (
            f"the {HEADER} header does not match the body signed with this source's secret (a different "
            f"secret, or a body changed on the way); {_WHAT_TO_DO}"
        )
        raise AuthenticationFailed(msg)
