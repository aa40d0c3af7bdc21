"""Logging for ``ledger serve``: one record is one line, whatever a request puts into it.

A path, parameter or exception message can carry a decoded ``%0A``; written as is, it would start a
line of its own that reads like a genuine record (log forging, CWE-117). ``OneLinePerRecord`` escapes
control characters in every record's message and indents the lines of a traceback, so that only a
record's first line starts at the margin. It is a filter on every handler, so it works with uvicorn's
own formatters (colours, access lines) as well as the ledger's.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

import uvicorn.config

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_TRACE_INDENT = "  | "
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def escape(text: str, pattern: re.Pattern[str] = _CONTROL) -> str:
    """``text`` with each control character written as a Python escape (``\\n``, ``\\x00``, ``\\u2028``)."""
    return pattern.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class OneLinePerRecord(logging.Filter):
    """Escapes control characters in a record's message and indents its traceback (see the module)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` in place; never drop it."""
        try:
            self._message(record)
            self._traceback(record)
        except Exception:  # noqa: S110 - a record that cannot be rewritten is still logged as it is
            pass
        return True

    @staticmethod
    def _message(record: logging.LogRecord) -> None:
        message = record.getMessage()
        if not _CONTROL.search(message):
            return
        args = record.args
        if isinstance(args, tuple) and all(isinstance(a, str | int | float) for a in args):
            # Formatters such as uvicorn's access formatter read the arguments themselves: keep them.
            record.msg = escape(str(record.msg))
            record.args = tuple(escape(a) if isinstance(a, str) else a for a in args)
        else:
            record.msg, record.args = escape(message), ()

    @staticmethod
    def _traceback(record: logging.LogRecord) -> None:
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = _indent(record.exc_text)
        if record.stack_info:
            record.stack_info = _indent(record.stack_info)


def _indent(text: str) -> str:
    lines = escape(text, _CONTROL_BUT_NEWLINE).split("\n")
    if lines and lines[0].startswith(_TRACE_INDENT):
        return text  # rewritten already (a record can pass several handlers)
    return "\n".join(_TRACE_INDENT + line for line in lines)


def serve_log_config() -> dict[str, Any]:
    """uvicorn's logging configuration, with every handler filtered by ``OneLinePerRecord`` and the
    ``ledger`` loggers (through the root logger) written to stderr at INFO."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["filters"] = {"one_line": {"()": OneLinePerRecord}}
    config["formatters"]["ledger"] = {"format": _FORMAT}
    config["handlers"]["ledger"] = {
        "formatter": "ledger",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    for handler in config["handlers"].values():
        handler["filters"] = ["one_line"]
    config["root"] = {"handlers": ["ledger"], "level": "WARNING"}
    config["loggers"]["ledger"] = {"level": "INFO"}
    return config
