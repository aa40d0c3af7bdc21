"""RFC 8785 JSON Canonicalization Scheme (JCS): the exact bytes that are hashed.

Kept dependency-free so the offline verifier can use it. Numbers follow ECMAScript's
Number.prototype.toString (RFC 8785 §3.2.2.3): ``10.0`` is ``10``, ``1e-7`` is ``1e-7``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ledger.domain.errors import ValidationFailed

# I-JSON (RFC 7493) integers: beyond this a double cannot hold every integer exactly.
_MAX_SAFE_INTEGER = 2**53 - 1
_encode_string = json.JSONEncoder(ensure_ascii=False).encode


def canonicalize(value: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of a JSON-compatible value."""
    parts: list[str] = []
    _write(value, parts, "$")
    text = "".join(parts)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        msg = "a string contains a lone surrogate, which is not valid Unicode"
        raise ValidationFailed(msg) from exc


def _write(value: Any, out: list[str], path: str) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_encode_string(value))
    elif isinstance(value, int):
        if abs(value) <= _MAX_SAFE_INTEGER:
            out.append(str(value))
        elif _survives_as_double(value):
            # Beyond 2^53 an integer is kept only if a double carries its digits unchanged (JCS numbers are
            # IEEE 754 doubles); anything else would be silently rounded, so it is refused instead.
            out.append(str(value))
        else:
            msg = (
                f"{path}: integer {value} cannot be carried exactly by a JSON number (RFC 8785 uses doubles)"
            )
            raise ValidationFailed(msg)
    elif isinstance(value, float):
        out.append(format_number(value, path))
    elif isinstance(value, dict):
        out.append("{")
        keys = sorted(value, key=_utf16_key)
        for i, key in enumerate(keys):
            if not isinstance(key, str):
                msg = f"{path}: object keys must be strings"
                raise ValidationFailed(msg)
            if i:
                out.append(",")
            out.append(_encode_string(key))
            out.append(":")
            _write(value[key], out, f"{path}.{key}")
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out, f"{path}[{i}]")
        out.append("]")
    else:
        msg = f"{path}: {type(value).__name__} is not a JSON value"
        raise ValidationFailed(msg)


def _survives_as_double(value: int) -> bool:
    try:
        return format_number(float(value)) == str(value)
    except OverflowError:
        return False


def _utf16_key(key: Any) -> bytes:
    # RFC 8785 §3.2.3: members sorted by their UTF-16 code units, not by code points.
    return str(key).encode("utf-16-be", "surrogatepass")


def format_number(value: float, path: str = "$") -> str:
    """Format a float as ECMAScript's Number.prototype.toString does (RFC 8785 §3.2.2.3)."""
    if math.isnan(value) or math.isinf(value):
        msg = f"{path}: NaN and Infinity are not JSON numbers"
        raise ValidationFailed(msg)
    if value == 0:
        return "0"  # also for -0.0
    sign = "-" if value < 0 else ""
    digits, exponent = _shortest_digits(abs(value))
    k = len(digits)
    n = exponent  # value = 0.digits × 10^n
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        body = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + body


def _shortest_digits(value: float) -> tuple[str, int]:
    """Shortest round-tripping decimal digits and exponent n with value = 0.DIGITS × 10^n."""
    text = repr(value)  # Python's repr is the shortest round-trip form, like ECMAScript's.
    mantissa, _, exp_text = text.partition("e")
    exp = int(exp_text) if exp_text else 0
    whole, _, frac = mantissa.partition(".")
    frac = frac.rstrip("0") if frac else ""
    raw = (whole + frac).lstrip("0")
    leading_zeros = len(whole + frac) - len((whole + frac).lstrip("0"))
    digits = raw.rstrip("0")
    n = len(whole) + exp - leading_zeros
    return digits, n
