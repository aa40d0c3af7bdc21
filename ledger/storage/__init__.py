"""PostgreSQL: the append-only event table, log heads, subject keys, the embedded server and migrations."""
