"""Our kappas and alpha equal the reference implementations (scikit-learn, statsmodels, krippendorff) to 1e-9.

The references are test dependencies only: the runtime computes every number itself (ledger/agreement).
Where a reference gives NaN (or refuses, 0/0), ours gives None.
"""

from __future__ import annotations

import math
import warnings

import krippendorff
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

from ledger.agreement import AgreementInputInvalid, cohen_kappa, fleiss_kappa, krippendorff_alpha

TOLERANCE = 1e-9
FAST = settings(max_examples=150, deadline=None)
CLASSES = ["benign", "probably-benign", "indeterminate", "suspicious", "malignant"]

# a rating: one of five ordered classes or missing (None, or NaN as the krippendorff package writes it)
rating = st.one_of(st.integers(0, 4), st.none(), st.just(math.nan))


def same(ours: float | None, reference: float) -> bool:
    """Ours is None exactly where the reference is undefined, and within 1e-9 elsewhere."""
    if ours is None:
        return not math.isfinite(reference)
    return math.isfinite(reference) and abs(ours - reference) <= TOLERANCE


def missing(v: float | None) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


# ---- Cohen's kappa ------------------------------------------------------------------------------------


def sklearn_kappa(a: list, b: list, weights: str | None, labels: list | None) -> float:
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if not missing(x) and not missing(y)]
    if not pairs:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return cohen_kappa_score(
                [x for x, _ in pairs], [y for _, y in pairs], weights=weights, labels=labels
            )
        except ValueError:  # no label of `labels` occurs: nothing to compare
            return math.nan


pairs_of_ratings = st.integers(0, 40).flatmap(
    lambda n: st.tuples(st.lists(rating, min_size=n, max_size=n), st.lists(rating, min_size=n, max_size=n))
)
weightings = st.sampled_from([None, "linear", "quadratic"])


@FAST
@given(pairs_of_ratings, weightings)
def test_cohen_kappa_equals_scikit_learn(ab: tuple[list, list], weights: str | None) -> None:
    a, b = ab
    assert same(cohen_kappa(a, b, weights=weights), sklearn_kappa(a, b, weights, None))  # type: ignore[arg-type]


@FAST
@given(pairs_of_ratings, weightings, st.permutations(range(6)), st.integers(1, 6))
def test_cohen_kappa_with_an_order_equals_scikit_learn_labels(
    ab: tuple[list, list], weights: str | None, permutation: list[int], keep: int
) -> None:
    # the order may leave observed classes out (their pairs are dropped) and name unobserved ones
    a, b = ab
    order = permutation[:keep]
    ours = cohen_kappa(a, b, weights=weights, order=order)  # type: ignore[arg-type]
    assert same(ours, sklearn_kappa(a, b, weights, order))


@FAST
@given(pairs_of_ratings, weightings)
def test_cohen_kappa_of_named_classes_uses_their_order(ab: tuple[list, list], weights: str | None) -> None:
    a, b = ([None if missing(v) else CLASSES[v] for v in side] for side in ab)
    ours = cohen_kappa(a, b, weights=weights, order=CLASSES)  # type: ignore[arg-type]
    assert same(ours, sklearn_kappa(a, b, weights, CLASSES))


def test_cohen_kappa_is_none_when_every_rating_is_one_class() -> None:
    assert cohen_kappa(["a", "a", "a"], ["a", "a", "a"]) is None
    assert cohen_kappa([], []) is None
    assert cohen_kappa([1, None], [None, 2]) is None


def test_weighted_kappa_of_named_classes_needs_their_order() -> None:
    with pytest.raises(AgreementInputInvalid):
        cohen_kappa(["low", "high"], ["high", "high"], weights="linear")


# ---- Fleiss' kappa ------------------------------------------------------------------------------------


@st.composite
def count_tables(draw: st.DrawFn) -> list[list[int]]:
    categories = draw(st.integers(1, 5))
    raters = draw(st.integers(1, 6))
    units = draw(st.integers(1, 25))
    table = []
    for _ in range(units):
        row = [0] * categories
        for choice in draw(st.lists(st.integers(0, categories - 1), min_size=raters, max_size=raters)):
            row[choice] += 1
        table.append(row)
    return table


@FAST
@given(count_tables())
def test_fleiss_kappa_equals_statsmodels(table: list[list[int]]) -> None:
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        reference = float(statsmodels_fleiss(np.array(table), method="fleiss"))
    assert same(fleiss_kappa(table), reference)


def test_fleiss_kappa_is_none_for_one_category_and_refuses_unequal_units() -> None:
    assert fleiss_kappa([[3, 0], [3, 0]]) is None
    assert fleiss_kappa([]) is None
    with pytest.raises(AgreementInputInvalid):
        fleiss_kappa([[2, 1], [1, 1]])


# ---- Krippendorff's alpha -----------------------------------------------------------------------------


reliability_tables = st.tuples(st.integers(2, 5), st.integers(1, 15)).flatmap(
    lambda shape: st.lists(
        st.lists(rating, min_size=shape[1], max_size=shape[1]), min_size=shape[0], max_size=shape[0]
    )
)
levels = st.sampled_from(["nominal", "ordinal", "interval"])


def reference_alpha(data: list[list], level: str, domain: list | None = None) -> float:
    matrix = np.array([[np.nan if missing(v) else v for v in row] for row in data], dtype=np.float64)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        try:
            return float(krippendorff.alpha(matrix, level_of_measurement=level, value_domain=domain))
        except ValueError:  # fewer than two values, or no unit with two ratings: 0/0
            return math.nan


@FAST
@given(reliability_tables, levels)
def test_krippendorff_alpha_equals_the_krippendorff_package(data: list[list], level: str) -> None:
    assert same(krippendorff_alpha(data, level=level), reference_alpha(data, level))  # type: ignore[arg-type]


@FAST
@given(reliability_tables, levels)
def test_krippendorff_alpha_of_named_classes_uses_their_positions(data: list[list], level: str) -> None:
    named = [[None if missing(v) else CLASSES[v] for v in row] for row in data]
    ours = krippendorff_alpha(named, level=level, order=CLASSES)  # type: ignore[arg-type]
    assert same(ours, reference_alpha(data, level, domain=list(range(len(CLASSES)))))


@FAST
@given(reliability_tables, st.sampled_from(["nominal", "ordinal"]))
def test_krippendorff_alpha_ignores_unobserved_classes_of_the_order(data: list[list], level: str) -> None:
    # the package with strings and a value domain, as a reviewer would call it
    named = [[None if missing(v) else CLASSES[v] for v in row] for row in data]
    strings = np.array([["nan" if v is None else v for v in row] for row in named])
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        try:
            reference = float(krippendorff.alpha(strings, level_of_measurement=level, value_domain=CLASSES))
        except ValueError:
            reference = math.nan
    assert same(krippendorff_alpha(named, level=level, order=CLASSES), reference)  # type: ignore[arg-type]


def test_krippendorff_alpha_of_the_papers_example() -> None:
    # Krippendorff (2011), the 4 coders x 12 units example: nominal 0.743, ordinal 0.815, interval 0.849
    nan = None
    data = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
    ]
    assert round(krippendorff_alpha(data, level="nominal") or 0, 3) == 0.743
    assert round(krippendorff_alpha(data, level="ordinal") or 0, 3) == 0.815
    assert round(krippendorff_alpha(data, level="interval") or 0, 3) == 0.849


def test_krippendorff_alpha_is_none_when_undefined() -> None:
    assert krippendorff_alpha([["a", "a"], ["a", "a"]], level="nominal") is None
    assert krippendorff_alpha([[1, None], [None, 2]], level="interval") is None
    assert krippendorff_alpha([], level="nominal") is None


def test_ordinal_alpha_of_named_classes_needs_their_order() -> None:
    with pytest.raises(AgreementInputInvalid):
        krippendorff_alpha([["low", "high"], ["high", "high"]], level="ordinal")
