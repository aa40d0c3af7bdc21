"""For random valid event streams, cut into random batches, rebuilding every projection gives the inline result."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.projections.rebuild import rebuild
from ledger.projections.registry import all_projectors
from ledger.runtime import Ledger
from tests.integration.test_projection_robustness import accepted_by_old_code
from tests.integration.test_projections import snapshot
from tests.stories import DATASET, Story, at

PEOPLE = ["ann-1", "ann-2", "rad-1", "exp-1"]
ITEMS = ["i1", "i2", "i3"]
ANNOTATIONS = ["a1", "a2", "a3", "a4"]
VERSIONS = ["1.0", "1.1", "2.0"]
hours = st.integers(min_value=-20, max_value=40).map(float)

Action = tuple[str, dict[str, Any]]

actions = st.one_of(
    st.builds(lambda who, kind, start, span, level: ("credential", {"who": who, "kind": kind, "start": at(start),
              "until": at(start + span) if span else None, "level": level}),
              st.sampled_from(PEOPLE), st.sampled_from(["internal_level", "license", "board_certification"]), hours,
              st.integers(min_value=0, max_value=30), st.sampled_from(["junior", "intermediate", "senior"])),
    st.builds(lambda who, kind, when, how: ("end_credential", {"who": who, "kind": kind, "when": at(when), "how": how}),
              st.sampled_from(PEOPLE), st.sampled_from(["internal_level", "license"]), hours,
              st.sampled_from(["revoked", "expired"])),
    st.builds(lambda v, when, sup: ("guideline", {"version": v, "when": at(when), "supersedes": sup}),
              st.sampled_from(VERSIONS), hours, st.none() | st.sampled_from(VERSIONS)),
    st.builds(lambda v, when: ("retire", {"version": v, "when": at(when)}), st.sampled_from(VERSIONS), hours),
    st.builds(lambda who, item, ann, when, version, g, update, model: ("annotate", {
              "who": who, "item": item, "ann": ann, "when": at(when), "version": version, "guideline": g,
              "update": update, "origin": "model" if model else "human"}),
              st.sampled_from(PEOPLE), st.sampled_from(ITEMS), st.sampled_from(ANNOTATIONS), hours,
              st.integers(min_value=1, max_value=3), st.sampled_from(VERSIONS), st.booleans(), st.booleans()),
    st.builds(lambda who, item, ann, when, version: ("delete", {"who": who, "item": item, "ann": ann, "when": at(when),
              "version": version}), st.sampled_from(PEOPLE), st.sampled_from(ITEMS), st.sampled_from(ANNOTATIONS), hours,
              st.integers(min_value=2, max_value=4)),
    st.builds(lambda who, item, ann, when, level, decision, version: ("review", {"who": who, "item": item, "ann": ann,
              "when": at(when), "level": level, "decision": decision, "version": version}),
              st.sampled_from(PEOPLE), st.sampled_from(ITEMS), st.sampled_from(ANNOTATIONS), hours,
              st.integers(min_value=1, max_value=4), st.sampled_from(["accept", "reject", "modify"]),
              st.integers(min_value=1, max_value=3)),
    st.builds(lambda who, item, anns, when, level: ("adjudicate", {"who": who, "item": item, "anns": anns,
              "final": anns[0], "when": at(when), "level": level}),
              st.sampled_from(PEOPLE), st.sampled_from(ITEMS), st.lists(st.sampled_from(ANNOTATIONS), min_size=1, max_size=3),
              hours, st.integers(min_value=2, max_value=4)),
    st.builds(lambda who, item, when: ("view", {"who": who, "item": item, "when": at(when)}),
              st.sampled_from(PEOPLE), st.sampled_from(ITEMS), hours),
    st.builds(lambda n, who, items, when, revoke: ("assign", {"n": n, "who": who, "items": items, "when": at(when),
              "revoke": revoke}), st.integers(min_value=1, max_value=2), st.sampled_from(PEOPLE),
              st.lists(st.sampled_from(ITEMS), min_size=1, max_size=2), hours, st.booleans()),
    # What older code accepted and validation now refuses: it must replay exactly as it was projected.
    st.builds(lambda who, when, bad: ("legacy_credential", {"who": who, "when": at(when), "bad": bad}),
              st.sampled_from(PEOPLE), hours, st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])),
)  # fmt: skip

_tenants = itertools.count()


def play(tenant: str, script: list[Action]) -> Story:
    story = Story(tenant)
    for name, kwargs in script:
        if name == "assign":
            data = {"assignment_id": f"asg-{kwargs['n']}", "dataset": DATASET, "items": kwargs["items"],
                    "assignee": kwargs["who"], "role": "annotator"}  # fmt: skip
            kind = "revoked" if kwargs["revoke"] else "created"
            story.add(f"assignment.{kind}", kwargs["when"], "lead", data, role="admin")
        elif name == "legacy_credential":
            story.credential(kwargs["who"], "license", kwargs["when"])
            story.events[-1] = accepted_by_old_code(story.events[-1], valid_from=kwargs["bad"])
        else:
            getattr(story, name)(**kwargs)
    return story


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    script=st.lists(actions, min_size=1, max_size=40),
    cuts=st.lists(st.integers(min_value=1, max_value=40), max_size=5),
)
def test_rebuilding_from_the_log_gives_exactly_the_inline_projections(
    ledger: Ledger, script: list[Action], cuts: list[int]
) -> None:
    story = play(f"prop-{next(_tenants)}", script)
    bounds = sorted({0, len(story.events), *(c for c in cuts if c < len(story.events))})
    for start, end in itertools.pairwise(bounds):
        ledger.appender.append(story.events[start:end])
    inline = snapshot(ledger)

    rebuild(ledger.db, all_projectors())

    assert snapshot(ledger) == inline
