"""The offline verifier: C2SP signed notes, checkpoints and cosignatures, with nothing beyond ``cryptography``.

An auditor can copy this package alone: it imports only the standard library, ``cryptography`` and its own
modules (``tests/unit/test_signed_note.py`` proves it), so checking the ledger's evidence needs no trust in
the ledger's code paths that touch a database or the network.
"""
