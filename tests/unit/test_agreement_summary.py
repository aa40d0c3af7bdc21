"""The agreement block of a task and the overlap summary: the numbers the lineage report and QC print."""

from __future__ import annotations

import json
import math
import random
import warnings

import krippendorff
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

from ledger.agreement import AgreementInputInvalid, Overlap, agreement, overlap_summary, unit_agreement
from ledger.agreement.intervals import bootstrap
from ledger.agreement.kappa import cohen_from_tables

TOLERANCE = 1e-9
GRADES = ["none", "mild", "moderate", "severe"]


def typical_ratings(units: int, readers: int, *, seed: int, noise: float = 0.3) -> dict[str, dict[str, str]]:
    """Readers who mostly agree on a true grade, each missing some items."""
    rng = random.Random(seed)
    out: dict[str, dict[str, str]] = {}
    for u in range(units):
        truth = rng.randrange(len(GRADES))
        row = {}
        for r in range(readers):
            if rng.random() < 0.15:
                continue
            grade = truth if rng.random() > noise else rng.randrange(len(GRADES))
            row[f"reader-{r}"] = GRADES[grade]
        out[f"item-{u:05d}"] = row
    return out


def close(ours: float | None, reference: float) -> bool:
    return (ours is None and not math.isfinite(reference)) or (
        ours is not None and abs(ours - reference) <= TOLERANCE
    )


# ---- the block, against the references ---------------------------------------------------------------


ratings_of_tasks = st.dictionaries(
    st.sampled_from([f"item-{i}" for i in range(12)]),
    st.dictionaries(st.sampled_from(["ana", "ben", "cho", "dev"]), st.sampled_from(GRADES), max_size=4),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(ratings_of_tasks, st.sampled_from(["nominal", "ordinal", "interval"]))
def test_the_block_equals_the_references(ratings: dict, scale: str) -> None:
    block = agreement(ratings, scale=scale, order=GRADES, resamples=20)  # type: ignore[arg-type]
    json.dumps(block, allow_nan=False)  # undefined is null, never NaN
    weights = None if scale == "nominal" else "quadratic"
    for pair in block["pairs"]:
        first, second = pair["readers"]
        common = [r for r in ratings.values() if first in r and second in r]
        assert pair["units"] == len(common) > 0
        assert pair["weights"] == weights
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = cohen_kappa_score(
                [r[first] for r in common], [r[second] for r in common], weights=weights, labels=GRADES
            )
        assert close(pair["kappa"], reference)
        if pair["kappa"] is None:
            assert pair["ci"] is None
    raters = sorted({rater for r in ratings.values() for rater in r})
    data = [[GRADES.index(r[rater]) if rater in r else np.nan for r in ratings.values()] for rater in raters]
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        try:
            reference_alpha = krippendorff.alpha(data, level_of_measurement=scale, value_domain=range(4))
        except ValueError:
            reference_alpha = math.nan
    assert close(block["alpha"]["value"], reference_alpha)
    assert block["alpha"]["level"] == scale
    assert block["ratings"] == sum(len(r) for r in ratings.values())


def test_fleiss_uses_the_units_with_the_modal_number_of_more_than_two_ratings() -> None:
    ratings = typical_ratings(300, 4, seed=7)
    block = agreement(ratings, scale="nominal", resamples=50)
    fleiss = block["fleiss"]
    m = fleiss["raters_per_unit"]
    sizes = [len(r) for r in ratings.values() if len(r) > 2]
    assert sizes.count(m) == max(sizes.count(s) for s in set(sizes))
    modal = [r for r in ratings.values() if len(r) == m]
    table = np.array([[list(r.values()).count(g) for g in GRADES] for r in modal])
    assert fleiss["units"] == len(modal)
    assert abs(fleiss["kappa"] - statsmodels_fleiss(table, method="fleiss")) <= TOLERANCE


def test_fleiss_is_over_the_items_of_more_than_two_readers_when_most_items_have_two() -> None:
    # as in a project where every fifth item has three readers: Fleiss describes those, not the pairs
    ratings = {f"item-{u:03d}": {"ana": GRADES[u % 3], "ben": GRADES[u % 3]} for u in range(40)}
    triples = {f"item-{u:03d}": {"ana": GRADES[u % 2], "ben": GRADES[u % 2], "cho": GRADES[(u // 2) % 2]}
               for u in range(40, 50)}  # fmt: skip
    fleiss = agreement({**ratings, **triples}, scale="nominal", resamples=50)["fleiss"]
    assert (fleiss["units"], fleiss["raters_per_unit"]) == (10, 3)
    table = np.array([[list(r.values()).count(g) for g in GRADES] for r in triples.values()])
    assert abs(fleiss["kappa"] - statsmodels_fleiss(table, method="fleiss")) <= TOLERANCE


def test_two_readers_have_no_fleiss_kappa_and_nominal_pairs_are_unweighted() -> None:
    block = agreement(typical_ratings(50, 2, seed=1), scale="nominal", resamples=50)
    assert block["fleiss"] is None
    assert [p["weights"] for p in block["pairs"]] == [None]
    assert block["raters"] == 2


def test_one_class_everywhere_is_undefined_not_nan() -> None:
    ratings = {f"item-{i}": {"ana": "mild", "ben": "mild", "cho": "mild"} for i in range(10)}
    block = agreement(ratings, scale="nominal")
    assert all(p["kappa"] is None and p["ci"] is None for p in block["pairs"])
    assert block["fleiss"]["kappa"] is None
    assert block["fleiss"]["ci"] is None
    assert block["alpha"] == {"level": "nominal", "value": None, "ci": None}
    assert block["percent_agreement"] == 1.0
    json.dumps(block, allow_nan=False)


def test_nothing_to_compare() -> None:
    block = agreement({"item-1": {"ana": "mild"}, "item-2": {}}, scale="ordinal", order=GRADES)
    assert block["units"] == 1
    assert block["pairs"] == []
    assert block["fleiss"] is None
    assert block["alpha"]["value"] is None
    assert block["percent_agreement"] is None


def test_a_class_outside_the_order_is_missing_in_every_statistic() -> None:
    ratings = typical_ratings(60, 3, seed=9)
    with_stray = {unit: dict(row) for unit, row in ratings.items()}
    with_stray["item-00000"]["reader-0"] = "ungradable"
    without = {unit: dict(row) for unit, row in ratings.items()}
    del without["item-00000"]["reader-0"]
    stray = agreement(with_stray, scale="ordinal", order=GRADES, resamples=30)
    assert stray == agreement(without, scale="ordinal", order=GRADES, resamples=30)
    assert stray["ratings"] == sum(len(row) for row in without.values())


def test_ordinal_names_need_their_order() -> None:
    with pytest.raises(AgreementInputInvalid):
        agreement(typical_ratings(5, 2, seed=0), scale="ordinal")


def test_unit_agreement_is_the_share_of_agreeing_pairs() -> None:
    assert unit_agreement(["a", "a", "b"]) == pytest.approx(1 / 3)
    assert unit_agreement(["a", "a"]) == 1.0
    assert unit_agreement(["a", None]) is None  # type: ignore[list-item]


# ---- bootstrap intervals ------------------------------------------------------------------------------


def test_intervals_are_reproducible_for_a_seed() -> None:
    ratings = typical_ratings(200, 3, seed=3)
    first = agreement(ratings, scale="ordinal", order=GRADES, seed=11)
    assert agreement(ratings, scale="ordinal", order=GRADES, seed=11) == first
    assert agreement(ratings, scale="ordinal", order=GRADES, seed=12)["alpha"]["ci"] != first["alpha"]["ci"]


@pytest.mark.parametrize("scale", ["nominal", "ordinal", "interval"])
def test_intervals_contain_the_estimate_on_typical_data(scale: str) -> None:
    block = agreement(typical_ratings(400, 3, seed=5), scale=scale, order=GRADES)  # type: ignore[arg-type]
    estimates = [(p["kappa"], p["ci"]) for p in block["pairs"]]
    estimates += [
        (block["fleiss"]["kappa"], block["fleiss"]["ci"]),
        (block["alpha"]["value"], block["alpha"]["ci"]),
    ]
    for value, ci in estimates:
        assert ci["low"] < value < ci["high"]
        assert ci["high"] - ci["low"] < 0.3
        assert ci["method"] == "percentile bootstrap over items"
        assert ci["level"] == 0.95
        assert ci["resamples"] == 1000


def test_drawing_pattern_counts_is_the_bootstrap_over_items() -> None:
    # the same interval (up to Monte Carlo error) as resampling the items themselves
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 500)
    a = np.where(rng.random(500) < 0.7, truth, rng.integers(0, 3, 500))
    b = np.where(rng.random(500) < 0.7, truth, rng.integers(0, 3, 500))
    table = np.zeros((3, 3))
    np.add.at(table, (a, b), 1)
    ours = bootstrap(
        table.ravel(), lambda d: cohen_from_tables(d.reshape(-1, 3, 3), None), resamples=4000, seed=1
    )
    picks = rng.integers(0, 500, (4000, 500))
    tables = np.zeros((4000, 3, 3))
    np.add.at(tables, (np.repeat(np.arange(4000), 500), a[picks].ravel(), b[picks].ravel()), 1)
    low, high = np.quantile(cohen_from_tables(tables, None), [0.025, 0.975])
    assert ours is not None
    assert abs(ours.low - low) < 0.01
    assert abs(ours.high - high) < 0.01


# ---- overlap summary ----------------------------------------------------------------------------------


def test_overlap_summary_counts_empty_pairs_apart_from_the_distribution() -> None:
    values = [
        Overlap(1.0, 1.0, "exact"),
        Overlap(0.5, 2 / 3, "shapely"),
        Overlap(0.0, 0.0, "exact"),
        Overlap(1.0, 1.0, "digest"),
        Overlap(None, None, "digest"),
        Overlap(None, None, "none"),
        Overlap(None, None, "invalid"),
        Overlap(None, None, "too_large"),
        Overlap(None, None, "invalid"),
    ]
    summary = overlap_summary(values, empty_both=4, empty_one=2)
    assert summary["pairs"] == 9
    assert (summary["empty_both"], summary["empty_one"]) == (4, 2)
    assert (summary["mask_digest_equal"], summary["mask_digest_differs"]) == (1, 1)
    assert (summary["polygons_invalid"], summary["polygons_too_large"]) == (2, 1)
    assert summary["note"].startswith(
        "masks compared by digest only; self-intersecting rings of more than 16"
    )
    iou = summary["iou"]
    assert iou["n"] == 4
    assert iou["mean"] == 0.625
    assert iou["median"] == 0.75
    assert (iou["min"], iou["max"]) == (0.0, 1.0)
    assert len(iou["histogram"]) == 10
    assert [c for _, _, c in iou["histogram"]] == [1, 0, 0, 0, 0, 1, 0, 0, 0, 2]  # 1.0 is in the last bin
    assert iou["histogram"][0][:2] == [0.0, 0.1]
    assert iou["histogram"][-1][:2] == [0.9, 1.0]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1), max_size=50), st.integers(0, 5), st.integers(0, 5))
def test_overlap_summary_percentiles_and_histogram(ious: list[float], both: int, one: int) -> None:
    summary = overlap_summary([Overlap(v, v, "exact") for v in ious], empty_both=both, empty_one=one)
    json.dumps(summary, allow_nan=False)
    iou = summary["iou"]
    assert iou["n"] == len(ious) == sum(c for _, _, c in iou["histogram"])
    assert summary["empty_both"] == both
    assert summary["empty_one"] == one
    if ious:
        assert iou["p5"] == pytest.approx(np.percentile(ious, 5))
        assert iou["p95"] == pytest.approx(np.percentile(ious, 95))
        assert iou["min"] <= iou["p25"] <= iou["median"] <= iou["p75"] <= iou["max"]
    else:
        assert iou["mean"] is None
        assert iou["p95"] is None


def test_without_pair_intervals_the_pairs_say_why_and_every_other_figure_is_unchanged() -> None:
    ratings = typical_ratings(80, 4, seed=3)
    full = agreement(ratings, scale="nominal", resamples=40)
    lean = agreement(ratings, scale="nominal", resamples=40, pair_intervals=False)
    assert all(p["ci"] is not None for p in full["pairs"])
    assert all(p["ci"] is None and p["ci_omitted"] for p in lean["pairs"])
    assert [p["kappa"] for p in lean["pairs"]] == [p["kappa"] for p in full["pairs"]]
    assert {k: v for k, v in lean.items() if k != "pairs"} == {k: v for k, v in full.items() if k != "pairs"}
