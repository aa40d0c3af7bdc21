"""Projections: derived, rebuildable answers to auditors' questions, updated inline with the log."""
