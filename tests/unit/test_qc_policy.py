"""The QC policy file (LEDGER_QC_POLICY): TOML and YAML read the same, and every mistake names the file and field."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ledger.quality.policy import PolicyInvalid, QcPolicy, load_policy
from ledger.settings import Settings

EXAMPLE = Path(__file__).parents[2] / "docs" / "qc-policy.example.toml"

TOML = """
[applications.nodule-detection]
guideline = "chest-ct"
datasets = ["chest-ct-2026"]
item_iou_min = 0.5
item_agreement_min = 1
"""
YAML = """
applications:
  nodule-detection:
    guideline: chest-ct
    datasets: [chest-ct-2026]
    item_iou_min: 0.5
    item_agreement_min: 1
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_toml_and_yaml_give_the_same_applications(tmp_path: Path) -> None:
    toml = load_policy(write(tmp_path, "p.toml", TOML))
    yaml = load_policy(write(tmp_path, "p.yaml", YAML))
    assert toml.applications == yaml.applications
    app = toml.applications["nodule-detection"]
    assert (app.guideline, app.datasets, app.item_iou_min, app.item_agreement_min) == (
        "chest-ct",
        ("chest-ct-2026",),
        0.5,
        1.0,
    )
    assert (app.kappa_excellent, app.kappa_acceptable, app.scale) == (0.8, 0.6, "nominal")


def test_the_policy_carries_the_sha256_of_its_bytes_and_its_source(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yml", YAML)
    policy = load_policy(path)
    assert policy.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert policy.source == str(path)


def test_the_shipped_example_holds_the_seed_thresholds() -> None:
    policy = load_policy(EXAMPLE)
    assert policy.applications["tumour-detection"].item_iou_min == 0.98
    assert policy.applications["organ-segmentation"].item_dice_min == 0.85
    for app in policy.applications.values():
        assert (app.kappa_excellent, app.kappa_acceptable) == (0.8, 0.6)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (TOML + "item_iou_max = 0.9\n", "applications.nodule-detection.item_iou_max"),
        (TOML + "kappa_excellent = 1.5\n", "applications.nodule-detection.kappa_excellent"),
        (TOML.replace("0.5", '"0.5"'), "applications.nodule-detection.item_iou_min"),
        (TOML.replace("0.5", "-0.1"), "applications.nodule-detection.item_iou_min"),
        (TOML + 'scale = "ordinal"\n', "applications.nodule-detection"),
        (TOML + 'scale = "ratio"\n', "applications.nodule-detection.scale"),
        (TOML.replace('guideline = "chest-ct"\n', ""), "applications.nodule-detection.guideline"),
        ("thresholds = 1\n" + TOML, "thresholds"),
        (TOML + "kappa_acceptable = 0.9\n", "applications.nodule-detection"),
    ],
)
def test_a_wrong_field_is_refused_naming_the_file_and_the_field(
    tmp_path: Path, text: str, field: str
) -> None:
    path = write(tmp_path, "p.toml", text)
    with pytest.raises(PolicyInvalid) as caught:
        load_policy(path)
    assert str(path) in caught.value.detail
    assert field in [e.field for e in caught.value.errors], caught.value.detail
    assert field in caught.value.detail


def test_two_applications_claiming_the_same_guideline_and_dataset_are_refused(tmp_path: Path) -> None:
    text = TOML + '[applications.other]\nguideline = "chest-ct"\ndatasets = ["chest-ct-2026"]\n'
    with pytest.raises(PolicyInvalid, match="nodule-detection and other both claim guideline chest-ct"):
        load_policy(write(tmp_path, "p.toml", text))


@pytest.mark.parametrize(
    ("name", "text"), [("p.toml", "[applications\n"), ("p.yaml", "a: [1,\n"), ("p.json", "{}")]
)
def test_a_file_that_does_not_parse_names_itself(tmp_path: Path, name: str, text: str) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(PolicyInvalid, match=str(path)):
        load_policy(path)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyInvalid, match="cannot read"):
        load_policy(tmp_path / "absent.toml")


def test_the_application_listing_the_dataset_wins_over_the_one_for_every_dataset(tmp_path: Path) -> None:
    policy = load_policy(
        write(tmp_path, "p.toml", TOML + '[applications.any-chest]\nguideline = "chest-ct"\n')
    )
    assert policy.application_for("chest-ct-2026", "chest-ct")[0] == "nodule-detection"  # type: ignore[index]
    assert policy.application_for("chest-ct-2027", "chest-ct")[0] == "any-chest"  # type: ignore[index]
    assert policy.application_for("chest-ct-2026", "other") is None


def test_settings_read_the_policy_once_and_are_empty_without_it(tmp_path: Path) -> None:
    path = write(tmp_path, "p.toml", TOML)
    assert Settings.from_env({"LEDGER_QC_POLICY": str(path)}).qc_policy == load_policy(path)
    assert Settings.from_env({}).qc_policy == QcPolicy.empty()
    with pytest.raises(PolicyInvalid):
        Settings.from_env({"LEDGER_QC_POLICY": str(tmp_path / "absent.yaml")})
