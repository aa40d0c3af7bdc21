"""Cohen's kappa (two raters, optionally weighted) and Fleiss' kappa (many raters), on count tables.

Each statistic is computed from a batch of tables at once (leading axis = batch), so the point estimate
and every bootstrap resample go through the same code. Formulas: Cohen (1960, 1968) as scikit-learn's
``cohen_kappa_score``; Fleiss (1971) as statsmodels' ``fleiss_kappa(method="fleiss")``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from ledger.agreement.values import AgreementInputInvalid, Value, categories, is_missing, point

Weights = Literal["linear", "quadratic"]


def cohen_kappa(
    a: Sequence[Value | None],
    b: Sequence[Value | None],
    *,
    weights: Weights | None = None,
    order: Sequence[Value] | None = None,
) -> float | None:
    """Cohen's kappa of two raters' paired values; ``None`` when undefined (0/0).

    A pair with a missing value is dropped, and so is a pair with a value outside ``order`` when one is
    given (as scikit-learn's ``labels=``). Weights use the positions of the classes in ``order`` (or in the
    sorted observed values).
    """
    table = confusion_table(a, b, weights=weights, order=order)
    return point(cohen_from_tables(table[np.newaxis], weights))


def confusion_table(
    a: Sequence[Value | None],
    b: Sequence[Value | None],
    *,
    weights: Weights | None = None,
    order: Sequence[Value] | None = None,
) -> NDArray[np.float64]:
    """The K x K table of counts ``[class of a, class of b]`` over the pairs kappa uses."""
    if len(a) != len(b):
        raise AgreementInputInvalid("the two raters' sequences differ in length")
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if not is_missing(x) and not is_missing(y)]
    observed = [v for pair in pairs for v in pair if v is not None]
    classes = categories(observed, order=order, ordered=weights is not None)
    index = {v: i for i, v in enumerate(classes)}
    table = np.zeros((len(classes), len(classes)), dtype=np.float64)
    for x, y in pairs:
        i, j = index.get(x), index.get(y)  # type: ignore[arg-type]
        if i is not None and j is not None:
            table[i, j] += 1
    return table


def cohen_from_tables(tables: NDArray[np.float64], weights: Weights | None) -> NDArray[np.float64]:
    """Kappa of each K x K table in a (B, K, K) batch; NaN where undefined."""
    k = tables.shape[-1]
    n = tables.sum(axis=(1, 2))
    rows, cols = tables.sum(axis=2), tables.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = rows[:, :, np.newaxis] * cols[:, np.newaxis, :] / n[:, np.newaxis, np.newaxis]
        w = _weight_matrix(k, weights)
        observed_disagreement = (w * tables).sum(axis=(1, 2))
        expected_disagreement = (w * expected).sum(axis=(1, 2))
        kappa = 1 - observed_disagreement / expected_disagreement
    # exact zero is safe: both sums are of non-negative terms
    undefined = (n == 0) | (expected_disagreement == 0)
    return np.where(undefined, np.nan, kappa)


def _weight_matrix(k: int, weights: Weights | None) -> NDArray[np.float64]:
    if weights is None:
        return 1 - np.eye(k)
    distance = np.abs(np.subtract.outer(np.arange(k), np.arange(k))).astype(np.float64)
    return distance if weights == "linear" else distance**2


def fleiss_kappa(counts: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa of a units x categories table of counts, each unit rated the same number of times.

    ``None`` when undefined: no units, fewer than two ratings per unit, or a single category used.
    """
    table = np.asarray(counts, dtype=np.float64)
    if table.size == 0:
        return None
    per_unit = table.sum(axis=1)
    if not np.all(per_unit == per_unit[0]):
        raise AgreementInputInvalid("Fleiss' kappa needs the same number of ratings for every unit")
    patterns, multiplicity = np.unique(table, axis=0, return_counts=True)
    return point(fleiss_from_patterns(patterns, multiplicity[np.newaxis].astype(np.float64)))


def fleiss_from_patterns(patterns: NDArray[np.float64], weights: NDArray[np.float64]) -> NDArray[np.float64]:
    """Fleiss' kappa for a batch of unit multisets: ``patterns`` (P, K) count rows, ``weights`` (B, P) units."""
    m = patterns[0].sum() if len(patterns) else 0.0
    units = weights.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        unit_agreement = ((patterns**2).sum(axis=1) - m) / (m * (m - 1))
        p_mean = weights @ unit_agreement / units
        p_category = weights @ patterns / (units * m)[:, np.newaxis]
        p_expected = (p_category**2).sum(axis=1)
        kappa = (p_mean - p_expected) / (1 - p_expected)
    undefined = (units == 0) | (m < 2) | (p_expected == 1)
    return np.where(undefined, np.nan, kappa)
