"""A webhook source's TOML config: read strictly, every refusal naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.domain.errors import ConfigurationError
from ledger.webhooks.config import SourceConfigInvalid, config_document, load_config, parse_config
from ledger.webhooks.label_studio_payload import item_in
from ledger.webhooks.model import SourceConfig

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "webhook-source.example.toml"


def written(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "source.toml"
    path.write_text(text, encoding="utf-8")
    return path


def refusal(tmp_path: Path, text: str) -> SourceConfigInvalid:
    path = written(tmp_path, text)
    with pytest.raises(SourceConfigInvalid) as caught:
        load_config(path)
    assert str(path) in caught.value.detail
    return caught.value


def test_the_example_sets_every_key() -> None:
    assert load_config(EXAMPLE) == SourceConfig(
        users={"17": "ann-0042", "23": "rev-0007"},
        dataset="chest-ct-2026",
        item_field="image",
        item_pattern=r"(?P<item>[0-9.]+)\.dcm",
        guideline_id="chest-ct",
        guideline_version="1.1",
        image_width=512,
        image_height=512,
        model_name="nodule-detector",
    )


def test_an_empty_file_is_the_defaults(tmp_path: Path) -> None:
    assert load_config(written(tmp_path, "")) == SourceConfig()


def test_the_refusal_is_a_configuration_error(tmp_path: Path) -> None:
    assert isinstance(refusal(tmp_path, "datasets = 'x'"), ConfigurationError)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("datasets = 'x'", "datasets"),
        ("[item]\nfeild = 'image'", "item.feild"),
        ("[users.17]\nname = 'x'", "users.17"),
        ("[model]\nname = 'm'\nversion = '2'", "model.version"),
    ],
    ids=["top-level", "item", "users-table", "model"],
)
def test_an_unknown_key_is_refused_naming_it(tmp_path: Path, text: str, key: str) -> None:
    error = refusal(tmp_path, text)
    assert [e.field for e in error.errors] == [key]
    assert f"{key}: " in error.detail


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("dataset = 3", "dataset"),
        ("dataset = 'chest ct'", "dataset"),
        ("[image]\nwidth = '512'\nheight = 512", "image.width"),
        ("[image]\nwidth = true\nheight = 512", "image.width"),
        ("[image]\nwidth = 0\nheight = 512", "image.width"),
        ("[image]\nwidth = 512", "image.height"),
        ("[guideline]\nid = 'chest-ct'", "guideline.version"),
        ("[users]\n'17' = 42", "users.17"),
        ("users = ['ann-1']", "users"),
        ("[item]\nfield = 7", "item.field"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_naming_the_key(tmp_path: Path, text: str, key: str) -> None:
    assert [e.field for e in refusal(tmp_path, text).errors] == [key]


def test_an_item_pattern_that_does_not_compile_is_refused(tmp_path: Path) -> None:
    error = refusal(tmp_path, "[item]\npattern = '(?P<item>[0-9'")
    assert [e.field for e in error.errors] == ["item.pattern"]
    assert "not a regular expression" in error.errors[0].message


def test_an_item_pattern_without_an_item_group_is_refused(tmp_path: Path) -> None:
    error = refusal(tmp_path, "[item]\npattern = '(?P<id>[0-9]+)'")
    assert [(e.field, e.message) for e in error.errors] == [
        ("item.pattern", "has no named group (?P<item>...) to take the item id from")
    ]


@pytest.mark.parametrize(
    "actor",
    ["jane.doe@example.org", "555-867-5309", "Patient name: John Smith"],
    ids=["email", "phone", "name"],
)
def test_a_user_mapped_to_a_direct_identifier_is_refused(tmp_path: Path, actor: str) -> None:
    error = refusal(tmp_path, f"[users]\n'17' = '{actor}'")
    assert [e.field for e in error.errors] == ["users.17"]


def test_an_e_mail_address_as_a_user_key_is_refused_without_repeating_it(tmp_path: Path) -> None:
    error = refusal(tmp_path, "[users]\n'1' = 'ann-1'\n'jane.doe@example.org' = 'ann-2'")
    assert [e.field for e in error.errors] == ["users"]
    assert "entry 2" in error.errors[0].message
    assert "jane.doe" not in error.detail


def test_a_dataset_or_model_holding_a_direct_identifier_is_refused(tmp_path: Path) -> None:
    error = refusal(tmp_path, "dataset = 'jane.doe@example.org'\n[model]\nname = 'ssn-123-45-6789'")
    assert sorted(e.field for e in error.errors) == ["dataset", "model.name"]


def test_a_file_that_is_not_toml_is_refused_naming_it(tmp_path: Path) -> None:
    assert "is not valid TOML" in refusal(tmp_path, "users: {17: ann-1}").detail


def test_a_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(SourceConfigInvalid, match=r"cannot read .*missing\.toml"):
        load_config(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    "config",
    [
        SourceConfig(),
        SourceConfig(users={"17": "ann-1"}),
        SourceConfig(item_pattern=r"/(?P<item>[^/]+)/"),
        SourceConfig(
            guideline_id="g", guideline_version="2", image_width=10, image_height=20, model_name="m"
        ),
    ],
    ids=["defaults", "users", "pattern", "the-rest"],
)
def test_the_stored_document_reads_back_as_the_same_config(config: SourceConfig) -> None:
    assert parse_config(config_document(config), where="test") == config


def test_the_stored_document_of_the_example_is_its_toml_document() -> None:
    import tomllib

    assert config_document(load_config(EXAMPLE)) == tomllib.loads(EXAMPLE.read_text())


def test_a_stored_document_that_no_longer_holds_is_refused_naming_where() -> None:
    with pytest.raises(SourceConfigInvalid, match=r"source ls-1: item\.pattern"):
        parse_config({"item": {"pattern": "x"}}, where="source ls-1")


def test_the_item_pattern_is_stored_even_when_it_is_the_default() -> None:
    """A source's items keep their ids when a later release changes the default rule."""
    assert config_document(SourceConfig()) == {"item": {"pattern": SourceConfig().item_pattern}}
    older = r"(?P<item>[^/]+)$"
    assert parse_config({"item": {"pattern": older}}, where="test").item_pattern == older


def test_the_example_pattern_and_the_default_take_a_dicom_uid_file_name() -> None:
    example = load_config(EXAMPLE)
    name = "1.2.826.0.1.3680043.10.543.1001.dcm"
    assert item_in(f"/data/{name}", example.item_pattern) == "1.2.826.0.1.3680043.10.543.1001"
    assert item_in(f"/data/{name}", SourceConfig().item_pattern) == "1.2.826.0.1.3680043.10.543.1001"
    assert item_in("/data/jane.doe.dcm", SourceConfig().item_pattern) is None
