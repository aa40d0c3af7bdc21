"""Reader agreement of a split, per task and class (``ledger.agreement``): chance-corrected agreement of first
reads, one-vs-rest per class, IoU/Dice of pairwise geometries per class, and intra-reader agreement of repeat
reads; each overall figure named by its QC policy band. Pure."""

from __future__ import annotations

import itertools
from typing import Any

from ledger.agreement import Overlap, agreement, overlap, overlap_summary
from ledger.quality.policy import Application, QcPolicy
from ledger.reports.lineage_data import Row
from ledger.reports.lineage_reads import Read, Reads

BAND_STATISTIC = "alpha"
"""The figure a task's band is read from: Krippendorff's alpha, defined for any number of readers."""


def agreement_section(reads: Reads, policy: QcPolicy | None, *, resamples: int) -> list[Row]:
    """One block per task of the split's first reads."""
    out = []
    for task in sorted(reads.first):
        app = policy.applications.get(task) if policy is not None else None
        scale = app.scale if app is not None else "nominal"
        order = list(app.classes) if app is not None and app.classes else None
        ratings = reads.ratings(task)
        classes = sorted({label for by_reader in ratings.values() for label in by_reader.values()})
        overall = agreement(ratings, scale=scale, order=order, resamples=resamples)
        out.append(
            {
                "task": task,
                "scale": scale,
                "classes": order or classes,
                "bands": _bands(app),
                "band": _band(overall, app),
                "band_statistic": BAND_STATISTIC,
                "overall": overall,
                "per_class": {
                    # intervals on each class's alpha and Fleiss, not on its reader pairs: the
                    # bootstraps grow with classes, not with classes x reader pairs
                    c: agreement(
                        _one_vs_rest(ratings, c), scale="nominal", resamples=resamples, pair_intervals=False
                    )
                    for c in classes
                },
                "geometry": {c: _geometry(reads.first[task], c) for c in classes},
                "intra_reader": _intra(reads, task, scale, order, resamples),
            }
        )
    return out


def _one_vs_rest(ratings: dict[str, dict[str, str]], label: str) -> dict[str, dict[str, str]]:
    return {
        item: {reader: ("yes" if value == label else "no") for reader, value in by_reader.items()}
        for item, by_reader in ratings.items()
    }


def _geometry(by_item: dict[str, dict[str, Read]], label: str) -> dict[str, Any]:
    """IoU and Dice of every pair of readers of an item who both drew ``label``; pairs where neither or only
    one of them did are counted as empty-versus-empty and empty-versus-one."""
    values: list[Overlap] = []
    empty_both = empty_one = 0
    for readers in by_item.values():
        for a, b in itertools.combinations(sorted(readers), 2):
            ga, gb = (readers[r].geometry if readers[r].label_class == label else None for r in (a, b))
            if ga is None and gb is None:
                empty_both += 1
            elif ga is None or gb is None:
                empty_one += 1
            else:
                values.append(overlap(ga, gb))
    return overlap_summary(values, empty_both=empty_both, empty_one=empty_one)


def _intra(reads: Reads, task: str, scale: Any, order: list[str] | None, resamples: int) -> Row | None:
    """Test-retest: each reader's first and repeat read of an item as two ratings of one unit."""
    pairs = {
        f"{item}\n{reader}": {"first": first[reader].label_class, "repeat": repeat.label_class}
        for item, by_reader in reads.repeat.get(task, {}).items()
        for reader, repeat in by_reader.items()
        if (first := reads.first[task].get(item, {})) and reader in first
    }
    ratings = {unit: {k: v for k, v in r.items() if v is not None} for unit, r in pairs.items()}
    if not ratings:
        return None
    return {
        "repeat_pairs": len(ratings),
        "readers": len({unit.split("\n", 1)[1] for unit in ratings}),
        **agreement(ratings, scale=scale, order=order, resamples=resamples),
    }


def _bands(app: Application | None) -> dict[str, float]:
    if app is None:
        return {"excellent": 0.8, "acceptable": 0.6}
    return {"excellent": app.kappa_excellent, "acceptable": app.kappa_acceptable}


def _band(block: Row, app: Application | None) -> str | None:
    value = (block.get(BAND_STATISTIC) or {}).get("value")
    if value is None:
        return None
    bands = _bands(app)
    if value >= bands["excellent"]:
        return "excellent"
    if value >= bands["acceptable"]:
        return "acceptable"
    return "below_acceptable"
