"""Percentile bootstrap confidence intervals over units, drawn as multinomial counts of unit patterns.

Resampling n units with replacement only changes how many times each distinct unit pattern (a confusion
cell, a row of category counts) occurs, and those counts are multinomial(n, observed shares): drawing them
directly is the same bootstrap (Efron & Tibshirani 1993, ch. 13) at the cost of B x P numbers, not B x n.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

METHOD = "percentile bootstrap over items"
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A confidence interval, with how it was made; ``resamples`` counts the draws where it was defined."""

    low: float
    high: float
    method: str
    resamples: int
    level: float

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"low", "high", "method", "resamples", "level"}``."""
        return asdict(self)


def bootstrap(
    multiplicity: NDArray[np.float64],
    statistic: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    *,
    resamples: int,
    seed: int,
    level: float = LEVEL,
) -> Interval | None:
    """The percentile interval of ``statistic`` over resampled units.

    ``multiplicity`` (P,) says how many units have each pattern; ``statistic`` maps a (B, P) batch of
    pattern counts to B values (NaN where undefined, such draws are left out). ``None`` with no units,
    no resamples or no defined draw. The same seed gives the same interval (a report is reproducible).
    """
    units = int(multiplicity.sum())
    if units == 0 or resamples <= 0:
        return None
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(units, multiplicity / units, size=resamples).astype(np.float64)
    values = statistic(draws)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return None
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return Interval(low=float(low), high=float(high), method=METHOD, resamples=len(values), level=level)
