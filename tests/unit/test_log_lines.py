"""ledger serve's logging: one record is one line, whatever a request puts into it (no log forging)."""

from __future__ import annotations

import io
import logging
import logging.config
from collections.abc import Iterator

import pytest

from ledger.api.logs import escape, serve_log_config

FORGED = "2026-12-01 15:09:00,000 INFO ledger.api: FORGED LINE"


@pytest.fixture
def served_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The logging configuration `ledger serve` hands uvicorn, writing into a buffer."""
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    monkeypatch.setattr("sys.stdout", stream)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logging.config.dictConfig(serve_log_config())  # resolves ext://sys.stderr now, to the buffer
    yield stream
    root.handlers[:], _ = saved
    root.setLevel(saved[1])
    for name in ("uvicorn", "uvicorn.access", "uvicorn.error", "ledger"):
        logging.getLogger(name).handlers.clear()


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_a_path_with_a_newline_cannot_start_a_line_of_its_own(served_logs: io.StringIO) -> None:
    # What ledger.api.problems logs for a 5xx: the code, the decoded path and the detail.
    logging.getLogger("ledger.api").error(
        "%s on %s: %s", "storage_unavailable", f"/v1/events/x\n{FORGED}", "down"
    )
    lines = _lines(served_logs)
    assert len(lines) == 1
    assert not any(line.startswith(FORGED) for line in lines)
    assert "\\n2026-12-01" in lines[0]


def test_a_traceback_is_indented_so_no_line_but_the_first_starts_at_the_margin(
    served_logs: io.StringIO,
) -> None:
    try:
        raise ValueError(f"bad value\n{FORGED}")
    except ValueError:
        logging.getLogger("ledger.api").exception("unexpected error on %s", "/v1/events/a\x00b")
    first, *rest = _lines(served_logs)
    assert "unexpected error on /v1/events/a\\x00b" in first
    assert rest
    assert all(line.startswith("  | ") for line in rest)


def test_uvicorn_access_lines_keep_their_format(served_logs: io.StringIO) -> None:
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", "/a\nb", "1.1", 200
    )
    [line] = _lines(served_logs)
    assert '"GET /a\\nb HTTP/1.1" 200' in line


@pytest.mark.parametrize(
    ("raw", "shown"), [("\x00", "\\x00"), ("\r\n", "\\r\\n"), ("\u2028", "\\u2028"), ("\x85", "\\x85")]
)
def test_control_characters_are_written_as_escapes(raw: str, shown: str) -> None:
    assert escape(f"a{raw}b") == f"a{shown}b"
