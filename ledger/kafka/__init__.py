"""Kafka ingestion: ``ledger consume`` appends the events topic to the ledger with exactly-once effect.

Layers, outside in: ``transport`` (a small consumer/producer interface with a kafka-python and a
confluent-kafka implementation), ``bindings`` (a record as the transport-neutral request
``ledger.ingest`` reads, and encoded for producers), ``batch`` (messages → validated events and rejections), ``offsets`` (the consumed offsets in
PostgreSQL and the compare-and-set fence), ``dlq`` (the dead-letter topic), ``consumer`` (the worker loop)
and ``status`` (lag and position for health checks). The exactly-once argument is in docs/exactly-once.md.
"""
