"""Reader agreement: chance-corrected statistics, geometry overlap and bootstrap intervals (pure, no I/O).

Our own implementation, cross-checked in the tests against scikit-learn, statsmodels and ``krippendorff``.
"""

from ledger.agreement.alpha import krippendorff_alpha
from ledger.agreement.geometry import Overlap, overlap
from ledger.agreement.intervals import Interval
from ledger.agreement.kappa import cohen_kappa, fleiss_kappa
from ledger.agreement.summary import agreement, overlap_summary, unit_agreement
from ledger.agreement.values import AgreementInputInvalid, Ratings, Scale, Value

__all__ = [
    "AgreementInputInvalid",
    "Interval",
    "Overlap",
    "Ratings",
    "Scale",
    "Value",
    "agreement",
    "cohen_kappa",
    "fleiss_kappa",
    "krippendorff_alpha",
    "overlap",
    "overlap_summary",
    "unit_agreement",
]
