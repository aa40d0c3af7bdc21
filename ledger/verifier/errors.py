"""The one error the verifier raises: its message names exactly what failed (line, key or signature)."""

from __future__ import annotations


class VerifierError(Exception):
    """A note, checkpoint, key or signature is malformed or does not verify; ``str(error)`` says which part."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
