"""The error tree is closed: every LedgerError has an HTTP status, and problem bodies stay small."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import ledger
from ledger.api.problems import MAX_ERRORS, MAX_TEXT, STATUS, field_errors, mapped_status
from ledger.domain import errors as e


def _every_subclass(cls: type[e.LedgerError]) -> list[type[e.LedgerError]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_every_subclass(sub)]
    return found


def _import_every_module() -> None:
    # A subclass defined anywhere in the package must be seen, not only those in ledger.domain.errors.
    for module in pkgutil.walk_packages(ledger.__path__, "ledger."):
        if module.name.startswith("ledger.migrations"):
            continue
        importlib.import_module(module.name)


_import_every_module()
SUBCLASSES = _every_subclass(e.LedgerError)


def test_the_tree_is_walked_whole() -> None:
    assert {e.BrokerUnavailable, e.KeyUnavailable, e.SealedValueTampered, e.ConfigurationError} <= set(
        SUBCLASSES
    )


@pytest.mark.parametrize("cls", SUBCLASSES, ids=lambda c: c.__name__)
def test_every_ledger_error_has_a_status(cls: type[e.LedgerError]) -> None:
    status = mapped_status(cls)
    assert status is not None, f"{cls.__name__} falls through to the generic 500: add it to problems.STATUS"
    assert 400 <= status < 600


def test_the_base_class_itself_is_not_mapped() -> None:
    # Mapping LedgerError would silently close the tree for every future subclass.
    assert e.LedgerError not in STATUS


@pytest.mark.parametrize(
    ("cls", "status"),
    [
        (e.ParameterInvalid, 400),
        (e.MalformedRequest, 400),
        (e.ValidationFailed, 422),
        (e.ForbiddenIdentifier, 422),
        (e.BodyTooLarge, 413),
        (e.OffsetConflict, 409),
        (e.BrokerUnavailable, 503),
        (e.KeyUnavailable, 503),
        (e.Overloaded, 503),
        (e.SealedValueTampered, 500),
        (e.ConfigurationError, 500),
        (e.VerificationError, 500),
    ],
)
def test_the_decided_statuses(cls: type[e.LedgerError], status: int) -> None:
    assert mapped_status(cls) == status


def test_a_parameter_error_is_not_titled_as_an_invalid_event() -> None:
    assert e.ParameterInvalid.title != e.ValidationFailed.title
    assert not issubclass(e.ParameterInvalid, e.ValidationFailed)


def test_error_count_defaults_to_the_errors_given_and_may_say_more() -> None:
    errors = [e.FieldError("id", "missing", i) for i in range(3)]
    assert e.ValidationFailed("bad", errors=errors).error_count == 3
    assert e.ValidationFailed("bad", errors=errors, error_count=100_000).error_count == 100_000
    assert e.ValidationFailed("bad").error_count == 0


def test_a_problem_lists_at_most_the_first_errors_with_the_count() -> None:
    errors = ({"field": f"f{i}", "message": "missing", "index": i} for i in range(100_000))
    body = field_errors(errors, 100_000)
    assert len(body["errors"]) == MAX_ERRORS
    assert body["errors"][0]["field"] == "f0"
    assert body["error_count"] == 100_000


def test_a_problem_cuts_long_field_names_and_messages() -> None:
    body = field_errors([{"field": "x" * 1_000_000, "message": "y" * 1_000_000}], 1)
    assert len(body["errors"][0]["field"]) == MAX_TEXT
    assert len(body["errors"][0]["message"]) == MAX_TEXT
