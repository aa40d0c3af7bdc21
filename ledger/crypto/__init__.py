"""Sealing of sensitive values (AES-256-GCM under per-subject keys) and the key providers behind it."""
