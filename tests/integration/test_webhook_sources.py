"""Webhook sources on the real PostgreSQL: add, list, rotate, configure, authenticate; the state a mapping
reads (``StateLookup``) after real events went through the append service; places remembered."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ledger.domain.envelope import validate_event
from ledger.domain.errors import AuthenticationFailed, NotFound, ValidationFailed
from ledger.runtime import Ledger
from ledger.webhooks.config import load_config
from ledger.webhooks.model import AnnotationState, Lookup, SourceConfig
from ledger.webhooks.sources import SourceExists, SourceStore, StateLookup
from tests.conftest import make_event as example_event

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "webhook-source.example.toml"


@pytest.fixture
def store(ledger: Ledger) -> SourceStore:
    return SourceStore(ledger.db)


def make_event(tenant: str, type_: str, **overrides: object) -> dict[str, object]:
    """An example event whose subject is its data's dataset/item."""
    event = example_event(tenant, type_, **overrides)
    data = event["data"]
    if "item" in data:
        event["subject"] = f"{data['dataset']}/{data['item']}"
    return event


def stored_secrets(ledger: Ledger, name: str) -> tuple[str | None, str | None]:
    with ledger.db.connect() as conn:
        row = conn.execute(
            "SELECT secret, secret_sha256 FROM webhook_sources WHERE name = %s", (name,)
        ).fetchone()
    assert row is not None
    return row[0], row[1]


class TestAdd:
    def test_default_names_count_up_per_kind(self, store: SourceStore) -> None:
        names = [store.add(kind, "acme")[0].name for kind in ("label-studio", "label-studio", "cvat")]
        assert names == ["ls-1", "ls-2", "cvat-1"]

    def test_a_source_reads_back_as_added(self, store: SourceStore, tenant: str) -> None:
        config = SourceConfig(users={"17": "ann-0042"}, dataset="chest-ct")
        added, secret = store.add("label-studio", tenant, name="ls-main", config=config)
        assert (added.name, added.kind, added.tenant, added.config) == (
            "ls-main",
            "label-studio",
            tenant,
            config,
        )
        assert added.rotated_at is None
        assert len(secret) == 43  # token_urlsafe(32)
        assert store.get("ls-main") == added
        assert store.list() == [added]

    def test_label_studio_keeps_only_the_digest_and_cvat_the_secret(
        self, store: SourceStore, ledger: Ledger
    ) -> None:
        _, ls_secret = store.add("label-studio", "acme", name="ls")
        _, cvat_secret = store.add("cvat", "acme", name="cv")
        assert stored_secrets(ledger, "ls") == (None, hashlib.sha256(ls_secret.encode()).hexdigest())
        assert stored_secrets(ledger, "cv") == (cvat_secret, None)

    def test_a_taken_name_is_refused(self, store: SourceStore) -> None:
        store.add("cvat", "acme", name="cv")
        with pytest.raises(SourceExists, match="'cv' exists already"):
            store.add("label-studio", "acme", name="cv")

    @pytest.mark.parametrize("name", ["LS", "ls_main", "-ls", "ls-", "a" * 41, "", "ls main"])
    def test_a_name_that_is_not_lowercase_letters_digits_and_dashes_is_refused(
        self, store: SourceStore, name: str
    ) -> None:
        with pytest.raises(ValidationFailed) as caught:
            store.add("label-studio", "acme", name=name)
        assert [e.field for e in caught.value.errors] == ["name"]

    def test_a_forty_character_name_is_taken(self, store: SourceStore) -> None:
        assert store.add("cvat", "acme", name="a" * 40)[0].name == "a" * 40

    def test_a_wrong_tenant_or_kind_is_refused_naming_it(self, store: SourceStore) -> None:
        with pytest.raises(ValidationFailed) as tenant:
            store.add("cvat", "Acme Corp")
        with pytest.raises(ValidationFailed) as kind:
            store.add("labelbox", "acme")
        assert ([e.field for e in tenant.value.errors], [e.field for e in kind.value.errors]) == (
            ["tenant"],
            ["kind"],
        )
        assert store.list() == []


class TestAuthentication:
    def test_the_right_bearer_secret_gives_the_source(self, store: SourceStore) -> None:
        added, secret = store.add("label-studio", "acme", name="ls")
        assert store.authenticate_bearer("ls", secret) == added

    def test_a_wrong_secret_an_unknown_name_and_another_kind_are_refused_alike(
        self, store: SourceStore
    ) -> None:
        _, secret = store.add("label-studio", "acme", name="ls")
        _, cvat_secret = store.add("cvat", "acme", name="cv")
        messages = set()
        for name, token in (
            ("ls", secret + "x"),
            ("ls", ""),
            ("ls", "\udcff"),
            ("nope", secret),
            ("cv", cvat_secret),
        ):
            with pytest.raises(AuthenticationFailed) as caught:
                store.authenticate_bearer(name, token)
            messages.add(caught.value.detail)
        with pytest.raises(AuthenticationFailed) as cvat_unknown:
            store.cvat_secret("ls")  # a Label Studio source has no HMAC secret
        messages.add(cvat_unknown.value.detail)
        assert len(messages) == 1
        (message,) = messages
        assert secret not in message

    def test_the_cvat_secret_is_the_one_handed_out(self, store: SourceStore) -> None:
        added, secret = store.add("cvat", "acme", name="cv")
        assert store.cvat_secret("cv") == (added, secret)

    def test_after_rotation_the_old_secret_is_refused_and_the_new_one_taken(self, store: SourceStore) -> None:
        _, old = store.add("label-studio", "acme", name="ls")
        _, cvat_old = store.add("cvat", "acme", name="cv")
        new, cvat_new = store.rotate("ls"), store.rotate("cv")
        assert new != old
        with pytest.raises(AuthenticationFailed):
            store.authenticate_bearer("ls", old)
        assert store.authenticate_bearer("ls", new).rotated_at is not None
        assert store.cvat_secret("cv")[1] == cvat_new != cvat_old


class TestCommandsOnUnknownSources:
    def test_rotate_get_and_configure_name_the_missing_source(self, store: SourceStore) -> None:
        for call in (lambda: store.rotate("ghost"), lambda: store.get("ghost"),
                     lambda: store.configure("ghost", SourceConfig())):  # fmt: skip
            with pytest.raises(NotFound, match=r"'ghost'.*`ledger sources list`"):
                call()


class TestConfigure:
    def test_the_example_config_round_trips_through_the_table(self, store: SourceStore) -> None:
        config = load_config(EXAMPLE)
        store.add("label-studio", "acme", name="ls")
        assert store.configure("ls", config).config == config
        assert store.get("ls").config == config
        assert config != SourceConfig()  # the example sets keys, so the round trip proves something

    def test_configure_replaces_the_config_and_keeps_the_secret(self, store: SourceStore) -> None:
        _, secret = store.add("label-studio", "acme", name="ls", config=SourceConfig(users={"1": "ann-1"}))
        store.configure("ls", SourceConfig(users={"2": "ann-2"}, model_name="detector"))
        source = store.authenticate_bearer("ls", secret)
        assert source.config == SourceConfig(users={"2": "ann-2"}, model_name="detector")


class TestPlaces:
    def test_remember_is_an_idempotent_upsert(self, store: SourceStore, ledger: Ledger) -> None:
        source, _ = store.add("label-studio", "acme", name="ls")
        lookup = StateLookup(ledger.db, source)
        assert lookup.place("task/12") is None
        store.remember(source, [("task/12", "ds", "img-1"), ("annotation/42", "ds", "img-1")])
        store.remember(source, [("task/12", "ds", "img-1")])
        assert lookup.place("task/12") == ("ds", "img-1")
        store.remember(source, [("task/12", "ds", "img-2")])
        assert (lookup.place("task/12"), lookup.place("annotation/42")) == (("ds", "img-2"), ("ds", "img-1"))
        with ledger.db.connect() as conn:
            assert conn.execute("SELECT count(*) FROM webhook_places").fetchone() == (2,)

    def test_refs_under_a_task_are_its_own_linked_objects_only(
        self, store: SourceStore, ledger: Ledger
    ) -> None:
        source, _ = store.add("label-studio", "acme", name="ls")
        other, _ = store.add("label-studio", "acme", name="ls-2")
        store.remember(
            source,
            [
                ("task/1", "ds", "img-1"),
                ("task/1/annotation/4", "ds", "img-1"),
                ("task/1/prediction/9", "ds", "img-1"),
                ("task/12/annotation/5", "ds", "img-1"),  # task 12: not under "task/1/"
                ("task/1x/annotation/6", "ds", "img-1"),
            ],
        )
        store.remember(other, [("task/1/annotation/7", "ds", "img-1")])
        assert StateLookup(ledger.db, source).refs_under("task/1/") == [
            "task/1/annotation/4",
            "task/1/prediction/9",
        ]

    def test_places_are_the_sources_own(self, store: SourceStore, ledger: Ledger) -> None:
        one, _ = store.add("label-studio", "acme", name="one")
        other, _ = store.add("label-studio", "acme", name="other")
        store.remember(one, [("task/1", "ds", "img-1")])
        assert StateLookup(ledger.db, other).place("task/1") is None

    def test_remember_on_the_callers_connection_is_in_its_transaction(
        self, store: SourceStore, ledger: Ledger
    ) -> None:
        source, _ = store.add("cvat", "acme", name="cv")
        with ledger.db.connect() as conn, conn.transaction():
            store.remember(source, [("job/7", "ds", "img-7")], conn=conn)
            assert StateLookup(conn, source).place("job/7") == ("ds", "img-7")
            assert StateLookup(ledger.db, source).place("job/7") is None  # not committed yet
        assert StateLookup(ledger.db, source).place("job/7") == ("ds", "img-7")


class TestStateLookup:
    def test_annotations_and_guidelines_come_from_the_appended_events(
        self, store: SourceStore, ledger: Ledger, tenant: str
    ) -> None:
        source, _ = store.add("label-studio", tenant, name="ls")
        created = make_event(tenant, "annotation.created", data_annotation_id="ls-a42-r1",
                             data_dataset="ds", data_item="img-1", time="2026-03-02T09:15:27Z")  # fmt: skip
        other_item = make_event(tenant, "annotation.created", data_annotation_id="ls-a43-r1",
                                data_dataset="ds", data_item="img-2")  # fmt: skip
        elsewhere = make_event("other", "annotation.created", data_annotation_id="ls-a42-r9",
                               data_dataset="ds", data_item="img-1")  # fmt: skip
        guideline = make_event(tenant, "guideline.published")
        ledger.appender.append([validate_event(e) for e in (guideline, created, other_item, elsewhere)])
        lookup: Lookup = StateLookup(ledger.db, source)

        (state,) = lookup.annotations_on("ds", "img-1")

        data = created["data"]
        assert state == AnnotationState(
            annotation_id="ls-a42-r1",
            dataset="ds",
            item="img-1",
            version=1,
            status="submitted",
            label_class=data["label_class"],
            geometry=data["geometry"],
            origin="human",
            updated_at=state.updated_at,
        )
        assert state.updated_at.isoformat() == "2026-03-02T09:15:27+00:00"
        assert lookup.guideline_published(guideline["data"]["guideline_id"], guideline["data"]["version"])
        assert not lookup.guideline_published(guideline["data"]["guideline_id"], "9.9")
        assert lookup.annotations_on("ds", "img-3") == []

    def test_a_deleted_annotation_is_there_as_deleted(
        self, store: SourceStore, ledger: Ledger, tenant: str
    ) -> None:
        source, _ = store.add("label-studio", tenant, name="ls")
        common = {"data_annotation_id": "ls-a42-r1", "data_dataset": "ds", "data_item": "img-1"}
        created = make_event(tenant, "annotation.created", time="2026-03-02T09:00:00Z", **common)
        deleted = make_event(tenant, "annotation.deleted", time="2026-03-02T10:00:00Z", **common,
                             data_version=2, data_previous_version=1)  # fmt: skip
        ledger.appender.append([validate_event(created), validate_event(deleted)])

        (state,) = StateLookup(ledger.db, source).annotations_on("ds", "img-1")

        assert (state.status, state.version, state.updated_at.isoformat()) == (
            "deleted",
            2,
            "2026-03-02T10:00:00+00:00",
        )


def test_the_application_role_may_read_and_write_the_tables_but_not_delete(ledger: Ledger) -> None:
    with ledger.db.connect() as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'ledger_app'").fetchone() is None:
            pytest.skip("the test server could not create the ledger_app role")
        grants = {
            table: [r[0] for r in conn.execute(
                "SELECT privilege_type FROM information_schema.role_table_grants"
                " WHERE grantee = 'ledger_app' AND table_name = %s ORDER BY 1", (table,)
            ).fetchall()]
            for table in ("webhook_sources", "webhook_places")
        }  # fmt: skip
    assert grants == {t: ["INSERT", "SELECT", "UPDATE"] for t in ("webhook_sources", "webhook_places")}


def test_the_table_refuses_a_label_studio_row_holding_its_secret(store: SourceStore, ledger: Ledger) -> None:
    import psycopg

    store.add("label-studio", "acme", name="ls")
    with ledger.db.connect() as raw, pytest.raises(psycopg.errors.CheckViolation):
        raw.execute("UPDATE webhook_sources SET secret = 'plain' WHERE name = 'ls'")
