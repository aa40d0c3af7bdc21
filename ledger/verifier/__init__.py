"""The offline verifier: C2SP signed notes, checkpoints and cosignatures, with nothing beyond ``cryptography``.

It imports only the standard library, ``cryptography``, its own modules, the RFC 9162 math of
``ledger.domain.merkle`` and the log rule of ``ledger.domain.logs`` (both standard library only;
``tests/unit/test_merkle_stdlib_only.py`` proves it), so an auditor can copy this package with those two
modules, and checking the ledger's evidence needs no trust in the ledger's code paths that touch a database
or the network.
"""
