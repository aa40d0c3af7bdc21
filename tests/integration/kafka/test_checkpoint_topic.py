"""Checkpoints are produced to the ``ledger.checkpoints`` topic of a real Kafka-protocol broker: keyed by
log, the signed note as value, the same bytes as the publication directory holds."""

from __future__ import annotations

import contextlib
import dataclasses

from kafka.admin import KafkaAdminClient, NewTopic

from ledger.checkpoints import TOPIC
from ledger.domain.envelope import validate_event
from ledger.runtime import Ledger, wire
from ledger.verifier.checkpoint import open_checkpoint
from tests.factories import example_event
from tests.integration.kafka.conftest import read_topic


def test_a_checkpoint_lands_on_the_checkpoints_topic(
    ledger: Ledger, tenant: str, kafka_bootstrap: str, kafka_client: str
) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="ledger-tests")
    with contextlib.suppress(Exception):  # made by an earlier test of this session already
        admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)])
    admin.close()
    kafka = dataclasses.replace(ledger.settings.kafka, client=kafka_client)
    settings = dataclasses.replace(ledger.settings, kafka_bootstrap=kafka_bootstrap, kafka=kafka)
    with_kafka = wire(settings, ledger.db)
    with_kafka.appender.append(
        [validate_event(example_event("annotation.created", tenant=tenant)) for _ in range(9)]
    )

    try:
        signed = with_kafka.checkpoints.sign(tenant)
    finally:
        with_kafka.checkpoints.close()

    assert signed is not None
    records = [r for r in read_topic(kafka_bootstrap, TOPIC, expect=1) if r.key == tenant.encode()]
    assert len(records) == 1
    assert records[0].value == with_kafka.checkpoints.directory.path(signed).read_bytes()
    assert dict(records[0].headers)["ledger.tree_size"] == b"9"
    keys = [w.key for w in with_kafka.checkpoints.verifier_keys()]
    assert open_checkpoint(records[0].value, keys).checkpoint.size == 9
