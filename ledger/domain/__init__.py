"""The pure core: event models, canonical encoding, hashing and errors. No I/O lives here."""
