"""Krippendorff's alpha (nominal, ordinal, interval) with missing ratings, from coincidence matrices.

Krippendorff, *Computing Krippendorff's Alpha-Reliability* (2011): alpha = 1 - D_o / D_e over the
coincidence matrix of pairable values (units with at least two ratings). The same definitions as the
``krippendorff`` package (``alpha(reliability_data=..., level_of_measurement=..., value_domain=...)``).
A batch axis carries the point estimate and the bootstrap resamples through one code path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import NDArray

from ledger.agreement.values import (
    AgreementInputInvalid,
    Scale,
    Value,
    categories,
    is_missing,
    is_number,
    point,
)


def krippendorff_alpha(
    data: Sequence[Sequence[Value | None]], *, level: Scale, order: Sequence[Value] | None = None
) -> float | None:
    """Alpha of a raters x units table (``None`` = missing); ``None`` when undefined (0/0).

    Interval distances use the values themselves when all are numbers, else the positions in ``order``.
    Values outside ``order`` (when given) count as missing.
    """
    domain, counts = value_counts(data, level=level, order=order)
    patterns, multiplicity = unit_patterns(counts)
    return point(alpha_from_patterns(patterns, multiplicity[np.newaxis], level=level, domain=domain))


def value_counts(
    data: Sequence[Sequence[Value | None]], *, level: Scale, order: Sequence[Value] | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The numeric value domain (V,) and the units x values counts (N, V) of a raters x units table."""
    units = len(data[0]) if data else 0
    if any(len(row) != units for row in data):
        raise AgreementInputInvalid("every rater's row must have one entry per unit")
    return unit_value_counts([[row[unit] for row in data] for unit in range(units)], level=level, order=order)


def unit_value_counts(
    units: Sequence[Iterable[Value | None]], *, level: Scale, order: Sequence[Value] | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The numeric value domain (V,) and the units x values counts (N, V) of each unit's ratings.

    Work in the number of ratings given, not raters x units: a unit lists only the ratings it has.
    """
    present = [[v for v in unit if not is_missing(v)] for unit in units]
    classes = categories(
        (v for unit in present for v in unit if v is not None), order=order, ordered=level != "nominal"
    )
    index = {v: i for i, v in enumerate(classes)}
    rows: list[int] = []
    columns: list[int] = []
    for row, unit in enumerate(present):
        for v in unit:
            position = index.get(v)  # type: ignore[arg-type]
            if position is not None:
                rows.append(row)
                columns.append(position)
    counts = np.zeros((len(units), len(classes)), dtype=np.float64)
    np.add.at(counts, (np.asarray(rows, dtype=np.intp), np.asarray(columns, dtype=np.intp)), 1.0)
    numeric = all(is_number(v) for v in classes)
    domain = np.array(classes if numeric else range(len(classes)), dtype=np.float64)
    return domain, counts


def unit_patterns(counts: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The distinct count rows of pairable units (two or more ratings) and how many units have each."""
    pairable = counts[counts.sum(axis=1) >= 2]
    if len(pairable) == 0:
        return np.zeros((0, counts.shape[1])), np.zeros(0)
    patterns, multiplicity = np.unique(pairable, axis=0, return_counts=True)
    return patterns, multiplicity.astype(np.float64)


def alpha_from_patterns(
    patterns: NDArray[np.float64], weights: NDArray[np.float64], *, level: Scale, domain: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Alpha for a batch of unit multisets: ``patterns`` (P, V) value counts, ``weights`` (B, P) units."""
    v = patterns.shape[1]
    batch = weights.shape[0]
    if len(patterns) == 0 or v < 2:
        return np.full(batch, np.nan)
    m = patterns.sum(axis=1)
    # each unit's coincidences: c c^T minus its diagonal of c, over m_u - 1 (Krippendorff 2011, §B)
    per_unit = (patterns[:, :, np.newaxis] * patterns[:, np.newaxis, :] - _diagonals(patterns)) / (m - 1)[
        :, np.newaxis, np.newaxis
    ]
    o = np.tensordot(weights, per_unit, axes=1)
    n_v = o.sum(axis=1)
    n = n_v.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        e = (n_v[:, :, np.newaxis] * n_v[:, np.newaxis, :] - _diagonals(n_v)) / (n - 1)[
            :, np.newaxis, np.newaxis
        ]
        d = _distances(level, domain, n_v)
        observed = (o * d).sum(axis=(1, 2))
        expected = (e * d).sum(axis=(1, 2))
        alpha = 1 - observed / expected
    # exact zero is safe: both sums are of non-negative terms
    return np.where((n < 2) | (expected == 0), np.nan, alpha)


def _diagonals(rows: NDArray[np.float64]) -> NDArray[np.float64]:
    """A (…, V, V) stack of diagonal matrices from (…, V) rows."""
    return rows[..., np.newaxis] * np.eye(rows.shape[-1])


def _distances(level: Scale, domain: NDArray[np.float64], n_v: NDArray[np.float64]) -> NDArray[np.float64]:
    """The squared distance of every pair of values, (B, V, V); ordinal depends on each batch's marginals."""
    batch, v = n_v.shape
    if level == "nominal":
        return np.broadcast_to(1 - np.eye(v), (batch, v, v))
    if level == "interval":
        return np.broadcast_to(np.subtract.outer(domain, domain) ** 2, (batch, v, v))
    # ordinal: (sum of n_g for g from i to j, minus (n_i + n_j) / 2) squared
    low = np.minimum.outer(np.arange(v), np.arange(v))
    high = np.maximum.outer(np.arange(v), np.arange(v))
    cumulative = np.cumsum(n_v, axis=1)
    between = cumulative[:, high] - cumulative[:, low] + n_v[:, low]
    return (between - (n_v[:, low] + n_v[:, high]) / 2) ** 2
