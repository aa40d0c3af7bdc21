"""A hash-chained, tamper-evident compliance ledger for medical-imaging AI annotation."""

__version__ = "0.1.0"
