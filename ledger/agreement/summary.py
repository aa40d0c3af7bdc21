"""The JSON-ready agreement block of a task (pairs, Fleiss, alpha) and the IoU/Dice distribution summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import combinations, pairwise
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ledger.agreement.alpha import alpha_from_patterns, unit_patterns, unit_value_counts
from ledger.agreement.geometry import MAX_REPAIR_POINTS, Overlap
from ledger.agreement.intervals import Interval, bootstrap
from ledger.agreement.kappa import Weights, cohen_from_tables, confusion_table, fleiss_from_patterns
from ledger.agreement.values import Ratings, Scale, Value, is_missing, point

HISTOGRAM_BINS = 10
PERCENTILES = {"p5": 5, "p25": 25, "p75": 75, "p95": 95}


def agreement(
    ratings: Ratings,
    *,
    scale: Scale,
    order: Sequence[Value] | None = None,
    resamples: int = 1000,
    seed: int = 0,
    pair_intervals: bool = True,
) -> dict[str, Any]:
    """Chance-corrected agreement of the readers of one task, with bootstrap intervals (JSON-ready).

    Cohen's kappa per reader pair (quadratic weights on an ordinal or interval scale), Fleiss' kappa over
    the units rated by more than two readers (those with the modal number of ratings among them; a unit of
    two ratings is a pair's, in the pairs), Krippendorff's alpha at ``scale``.
    Intra-reader (test-retest) agreement is the same block over ``{item: {"first": v, "repeat": w}}``.
    ``pair_intervals=False`` leaves every pair's ``ci`` out (``null``, with ``ci_omitted`` saying why): a
    caller with many blocks (one per class) bounds its bootstraps by the blocks, not by reader pairs.
    """
    # a class outside ``order`` cannot be placed on the scale: it counts as missing in every statistic
    known = None if order is None else set(order)
    present = {
        unit: {
            rater: value
            for rater, value in by_rater.items()
            if not is_missing(value) and (known is None or value in known)
        }
        for unit, by_rater in ratings.items()
    }
    present = {unit: by_rater for unit, by_rater in present.items() if by_rater}
    raters = sorted({rater for by_rater in present.values() for rater in by_rater})
    weights: Weights | None = None if scale == "nominal" else "quadratic"
    return {
        "units": len(present),
        "raters": len(raters),
        "ratings": sum(len(by_rater) for by_rater in present.values()),
        "scale": scale,
        "pairs": _pairs(present, raters, weights, order, resamples if pair_intervals else None, seed),
        "fleiss": _fleiss(present, len(raters), resamples, seed),
        "alpha": _alpha(present, scale, order, resamples, seed),
        "percent_agreement": _percent_agreement(present),
    }


def unit_agreement(values: Iterable[Value]) -> float | None:
    """Share of the pairs of ratings of one unit that agree; ``None`` with fewer than two ratings."""
    counts = Counter(v for v in values if not is_missing(v))
    m = sum(counts.values())
    if m < 2:
        return None
    return sum(c * (c - 1) for c in counts.values()) / (m * (m - 1))


PAIR_CI_OMITTED = "no interval asked for reader pairs in this block"


def _pairs(
    present: dict[str, dict[str, Value]],
    raters: list[str],
    weights: Weights | None,
    order: Sequence[Value] | None,
    resamples: int | None,
    seed: int,
) -> list[dict[str, Any]]:
    """Cohen's kappa of every reader pair with a common unit; ``resamples=None``: no interval."""
    # each pair's common units, gathered unit by unit: work in the ratings, not in pairs x units
    common: dict[tuple[str, str], list[tuple[Value, Value]]] = {}
    for by_rater in present.values():
        for first, second in combinations(sorted(by_rater), 2):
            common.setdefault((first, second), []).append((by_rater[first], by_rater[second]))
    out = []
    for first, second in combinations(raters, 2):
        values = common.get((first, second))
        if not values:
            continue
        table = confusion_table([a for a, _ in values], [b for _, b in values], weights=weights, order=order)
        kappa = point(cohen_from_tables(table[np.newaxis], weights))
        k = table.shape[0]

        def statistic(draws: NDArray[np.float64], k: int = k) -> NDArray[np.float64]:
            return cohen_from_tables(draws.reshape(-1, k, k), weights)

        ci = None
        if kappa is not None and resamples is not None:
            ci = bootstrap(table.ravel(), statistic, resamples=resamples, seed=seed)
        pair: dict[str, Any] = {
            "readers": [first, second],
            "units": int(table.sum()),
            "kappa": kappa,
            "weights": weights,
            "ci": _ci(ci),
        }
        if resamples is None:
            pair["ci_omitted"] = PAIR_CI_OMITTED
        out.append(pair)
    return out


def _fleiss(
    present: dict[str, dict[str, Value]], rater_count: int, resamples: int, seed: int
) -> dict[str, Any] | None:
    sizes = Counter(len(by_rater) for by_rater in present.values() if len(by_rater) > 2)
    if rater_count <= 2 or not sizes:
        return None
    # the modal number of ratings of the units read by more than two (the larger on a tie): Fleiss needs the
    # same number for every unit, and over units of two ratings it would say nothing the pairs do not
    m = max(sizes, key=lambda size: (sizes[size], size))
    units = [by_rater for by_rater in present.values() if len(by_rater) == m]
    _, table = unit_value_counts([by_rater.values() for by_rater in units], level="nominal")
    patterns, multiplicity = np.unique(table, axis=0, return_counts=True)
    weights = multiplicity.astype(np.float64)
    kappa = point(fleiss_from_patterns(patterns, weights[np.newaxis]))

    def statistic(draws: NDArray[np.float64]) -> NDArray[np.float64]:
        return fleiss_from_patterns(patterns, draws)

    ci = None if kappa is None else bootstrap(weights, statistic, resamples=resamples, seed=seed)
    return {"units": len(units), "raters_per_unit": m, "kappa": kappa, "ci": _ci(ci)}


def _alpha(
    present: dict[str, dict[str, Value]],
    scale: Scale,
    order: Sequence[Value] | None,
    resamples: int,
    seed: int,
) -> dict[str, Any]:
    domain, counts = unit_value_counts(
        [by_rater.values() for by_rater in present.values()], level=scale, order=order
    )
    patterns, multiplicity = unit_patterns(counts)
    value = point(alpha_from_patterns(patterns, multiplicity[np.newaxis], level=scale, domain=domain))

    def statistic(draws: NDArray[np.float64]) -> NDArray[np.float64]:
        return alpha_from_patterns(patterns, draws, level=scale, domain=domain)

    ci = None if value is None else bootstrap(multiplicity, statistic, resamples=resamples, seed=seed)
    return {"level": scale, "value": value, "ci": _ci(ci)}


def _percent_agreement(present: dict[str, dict[str, Value]]) -> float | None:
    shares = [
        s for s in (unit_agreement(by_rater.values()) for by_rater in present.values()) if s is not None
    ]
    return sum(shares) / len(shares) if shares else None


def _ci(interval: Interval | None) -> dict[str, Any] | None:
    return None if interval is None else interval.as_dict()


def overlap_summary(values: Iterable[Overlap], *, empty_both: int, empty_one: int) -> dict[str, Any]:
    """The IoU and Dice distributions of compared geometry pairs, with the empty cases counted apart.

    ``empty_both``: pairs where neither reader drew anything; ``empty_one``: one drew, the other did not.
    Neither enters the distributions, whose ``n`` counts the pairs with a defined value.
    """
    overlaps = list(values)
    digests = [o for o in overlaps if o.method == "digest"]
    return {
        "pairs": len(overlaps),
        "iou": _distribution([o.iou for o in overlaps if o.iou is not None]),
        "dice": _distribution([o.dice for o in overlaps if o.dice is not None]),
        "empty_both": empty_both,
        "empty_one": empty_one,
        "mask_digest_equal": sum(1 for o in digests if o.iou is not None),
        "mask_digest_differs": sum(1 for o in digests if o.iou is None),
        "polygons_invalid": sum(1 for o in overlaps if o.method == "invalid"),
        "polygons_too_large": sum(1 for o in overlaps if o.method == "too_large"),
        "note": (
            "masks compared by digest only; self-intersecting rings of more than "
            f"{MAX_REPAIR_POINTS} points are not repaired, and not compared"
        ),
    }


def _distribution(values: list[float]) -> dict[str, Any]:
    edges = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
    array = np.asarray(values, dtype=np.float64)
    # the last bin is closed: IoU = 1.0 is counted in [0.9, 1.0]
    counts, _ = np.histogram(np.clip(array, 0.0, 1.0), bins=edges)
    histogram = [[float(lo), float(hi), int(c)] for (lo, hi), c in zip(pairwise(edges), counts, strict=True)]
    if not values:
        return {
            "n": 0,
            **dict.fromkeys(["mean", "median", *PERCENTILES, "min", "max"]),
            "histogram": histogram,
        }
    return {
        "n": len(values),
        "mean": float(array.mean()),
        "median": float(np.median(array)),
        **{name: float(np.percentile(array, q)) for name, q in PERCENTILES.items()},
        "min": float(array.min()),
        "max": float(array.max()),
        "histogram": histogram,
    }
