"""The bounds of the append transaction, read from LEDGER_DB_LOCK_TIMEOUT and LEDGER_DB_STATEMENT_TIMEOUT."""

from __future__ import annotations

import pytest

from ledger.domain.errors import ConfigurationError
from ledger.settings import Settings


def test_the_defaults_bound_a_lock_wait_to_5_s_and_a_statement_to_30_s() -> None:
    settings = Settings.from_env({})
    assert (settings.db_lock_timeout, settings.db_statement_timeout) == (5.0, 30.0)


def test_both_are_read_in_seconds() -> None:
    settings = Settings.from_env({"LEDGER_DB_LOCK_TIMEOUT": "0.5", "LEDGER_DB_STATEMENT_TIMEOUT": "120"})
    assert (settings.db_lock_timeout, settings.db_statement_timeout) == (0.5, 120.0)


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "86400", "soon"])
@pytest.mark.parametrize("name", ["LEDGER_DB_LOCK_TIMEOUT", "LEDGER_DB_STATEMENT_TIMEOUT"])
def test_a_bound_that_is_no_bound_is_refused_naming_the_variable(name: str, value: str) -> None:
    # PostgreSQL reads 0 as "wait forever": that would silently remove the bound.
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({name: value})
