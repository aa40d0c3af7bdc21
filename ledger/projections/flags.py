"""Every kind of compliance flag the projections raise, with the rule it cites: the one list readers
validate a ``kind`` filter against and the docs are written from."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.projections.qualification import ROLE_REQUIREMENTS


@dataclass(frozen=True)
class FlagKind:
    """A kind of flag: the rule it cites and what raises it."""

    rule: str
    meaning: str
    applied: bool | None = None
    """Whether the flagged event still changed the projection (None: the flag is about the act itself)."""


_SEQUENCING = "21 CFR 11.10(f)"  # operational checks enforcing the permitted sequencing of steps
_OBSCURING = "21 CFR 11.10(e)"  # record changes shall not obscure previously recorded information

FLAG_KINDS: dict[str, FlagKind] = {
    **{
        f"unqualified_{role}": FlagKind(
            "21 CFR 11.10(d),(g)", f"work needing the {role} role by an actor with no valid credential for it"
        )
        for role in ROLE_REQUIREMENTS
    },
    "guideline_not_in_effect": FlagKind(
        "21 CFR 820.30 / labelling protocol",
        "an annotation under a guideline version not published, not yet in effect, or no longer in effect",
    ),
    "review_before_annotation": FlagKind(
        _SEQUENCING,
        "a review, adjudication or deletion of an annotation (version) that does not exist yet;"
        " the current state is left as it is",
        applied=False,
    ),
    "review_of_other_version": FlagKind(
        _SEQUENCING,
        "a review or adjudication of an earlier version, or of a deleted annotation; it stays on the"
        " lineage and the current state is left as it is",
        applied=False,
    ),
    "annotation_recreated": FlagKind(
        _OBSCURING,
        "annotation.created for an annotation id that exists and is not deleted; not applied",
        applied=False,
    ),
    "annotation_out_of_sequence": FlagKind(
        _SEQUENCING,
        "an update or deletion whose version does not move the annotation forward (a repeat, an older"
        " version, or a change to a deleted annotation); not applied",
        applied=False,
    ),
    "annotation_version_gap": FlagKind(
        _SEQUENCING,
        "an update or deletion that moves the annotation forward but whose previous_version is not the"
        " version on record (a version the ledger never saw); applied",
        applied=True,
    ),
    "guideline_republished": FlagKind(
        _OBSCURING,
        "guideline.published for a guideline version already published with other content"
        " (title, document, effective_from or supersedes); not applied",
        applied=False,
    ),
    "credential_reissued": FlagKind(
        _OBSCURING,
        "credential.granted for a credential id on record with other content, or a grant or renewal of"
        " a credential id held by another annotator; not applied",
        applied=False,
    ),
    "assignment_recreated": FlagKind(
        _OBSCURING,
        "assignment.created for an assignment id on record with other content or already revoked;"
        " not applied",
        applied=False,
    ),
    "hold_outside_tenant": FlagKind(
        "HIPAA 164.316(b)(2)(i); tenant isolation",
        "a legal hold whose scope names another tenant's log; it holds nothing",
        applied=False,
    ),
    "needs_expert_review": FlagKind(
        "21 CFR 820.30(g) / QC policy (LEDGER_QC_POLICY)",
        "an item whose readers agree less than its QC-policy application requires (IoU, Dice or class"
        " agreement below the threshold): it is routed to level-4 (expert) review; raised once per item"
        " and application, with the readers' annotation events as evidence and the policy's SHA-256",
    ),
    "unprojectable_event": FlagKind(
        "21 CFR 11.10(a)",
        "an event recorded before the accepted ranges were enforced, holding a time or an integer no"
        " projection can hold; it stays in the log, in provenance and in the retention counts and is"
        " left out of label, credential, guideline and assignment state (a legal hold or erasure is kept"
        " at its recorded time; a release is not applied, so the hold stays)",
        applied=False,
    ),
}
