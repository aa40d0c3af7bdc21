"""What the agreement statistics take: values, scales, ratings, and how values become category codes."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from ledger.domain.errors import ParameterInvalid

Value = str | int | float
Scale = Literal["nominal", "ordinal", "interval"]
# unit (item) -> rater (actor) -> value; a rater missing from a unit is a missing rating
Ratings = Mapping[str, Mapping[str, Value]]


class AgreementInputInvalid(ParameterInvalid):
    """Ratings the statistics cannot order or place: a scale that needs an order of the classes without one."""

    code = "agreement_input_invalid"
    title = "The ratings cannot be compared on this scale"


def is_missing(value: Value | None) -> bool:
    """A missing rating: ``None``, or a float NaN (as the ``krippendorff`` package writes one)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def is_number(value: Value) -> bool:
    """An int or float value (bool excluded: it is never a rating on purpose)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def categories(values: Iterable[Value], *, order: Sequence[Value] | None, ordered: bool) -> list[Value]:
    """The categories in the order the statistics use: ``order`` when given, else the observed values sorted.

    An ordered use (weights, ordinal or interval level) of non-numeric values needs ``order``: the
    alphabetical order of class names is never a scale.
    """
    if order is not None:
        return list(dict.fromkeys(order))
    seen = list(dict.fromkeys(values))
    if ordered and not all(is_number(v) for v in seen):
        raise AgreementInputInvalid(
            "an ordinal or interval comparison of non-numeric classes needs the order of the classes"
        )
    return sorted(seen, key=lambda v: (isinstance(v, str), v))


def point(batch: NDArray[np.float64]) -> float | None:
    """The first entry of a batch of statistics as JSON wants it: a float, or ``None`` for NaN (0/0)."""
    value = float(batch[0])
    return None if np.isnan(value) else value
