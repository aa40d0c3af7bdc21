"""RFC 8785 JSON Canonicalization Scheme (JCS): the exact bytes that are hashed.

Kept dependency-free so the offline verifier can use it. Numbers follow ECMAScript's
Number.prototype.toString (RFC 8785 §3.2.2.3): ``10.0`` is ``10``, ``1e-7`` is ``1e-7``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn

from ledger.domain.errors import FieldError, ValidationFailed

try:  # optional: a C encoder whose output is JCS for most events, far faster (see canonicalize)
    import msgspec
except ImportError:  # pragma: no cover - the offline verifier runs on the standard library alone
    msgspec = None  # type: ignore[assignment]

# I-JSON (RFC 7493) integers: beyond this a double cannot hold every integer exactly.
_MAX_SAFE_INTEGER = 2**53 - 1
_encode_string = json.JSONEncoder(ensure_ascii=False).encode
_fast_encoder = msgspec.json.Encoder(order="sorted") if msgspec is not None else None
_fast_decoder = msgspec.json.Decoder() if msgspec is not None else None
# msgspec's output is RFC 8785 except in three places, which are checked on the output bytes:
# - numbers: msgspec writes 100.0 and 1e20 where JCS writes 100 and 100000000000000000000, writes NaN
#   as null, and keeps integers beyond 2^53. A JSON number follows ':' in an object and '[' or ',' in
#   an array, so a document with no '[' needs only the (fast, literal-prefixed) ':' pattern. Documents
#   with such numbers are re-encoded with every number pre-formatted (msgspec.Raw), not walked by hand.
# - key order beyond the BMP: code-point and UTF-16 orders differ only for 4-byte UTF-8 characters.
# - a bare scalar, which _exact handles.
_NUMBER_IN_OBJECT = re.compile(rb":-?(?:\d{16}|\d+[.eE])")
_NUMBER_ANYWHERE = re.compile(rb"[:\[,]-?(?:\d{16}|\d+[.eE])")
_OUTSIDE_BMP = re.compile(rb"[\xf0-\xf4]")


def canonicalize(value: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of a JSON-compatible value."""
    if _fast_encoder is None or not isinstance(value, dict | list):
        return _canonicalize_exactly(value)
    try:
        encoded = _fast_encoder.encode(value)
        # msgspec also encodes bytes, datetimes, sets, UUIDs…; JSON has none of them. Only output that
        # decodes back to the very value passed in came from JSON types alone.
        faithful = _fast_decoder.decode(encoded) == value
    except (TypeError, ValueError, UnicodeEncodeError, OverflowError, msgspec.DecodeError):
        faithful = False
    if not faithful:
        return _canonicalize_exactly(value)  # exact, or raises the precise error
    return _jcs_of(value, encoded)


def canonicalize_json(value: Any) -> bytes:
    """``canonicalize`` of a value known to hold JSON types alone, byte for byte the same, faster.

    Such a value is what a JSON decoder returns, or what is built from one with dicts, lists, strings,
    numbers, booleans and ``None`` only (sealing, blinding and normalising a validated event do just that).
    The check ``canonicalize`` makes that msgspec's output came from JSON types (a decode of the output
    compared with the value: about a third of its cost) is what is left out; anything else that has no
    canonical form (a lone surrogate, an integer no double carries) is still refused, naming its field.
    """
    if _fast_encoder is None or not isinstance(value, dict | list):
        return _canonicalize_exactly(value)
    try:
        encoded = _fast_encoder.encode(value)
    except (TypeError, ValueError, UnicodeEncodeError, OverflowError):
        return _canonicalize_exactly(value)  # exact, or raises the precise error
    return _jcs_of(value, encoded)


def _jcs_of(value: Any, encoded: bytes) -> bytes:
    """The JCS bytes of ``value`` from ``encoded``, msgspec's sorted output for it from JSON types alone."""
    assert _fast_encoder is not None  # only called once msgspec encoded ``value``
    if not encoded.isascii() and _OUTSIDE_BMP.search(encoded):
        return _canonicalize_exactly(value)
    numbers = _NUMBER_ANYWHERE if b"[" in encoded else _NUMBER_IN_OBJECT
    if b"null" in encoded or numbers.search(encoded):
        return _fast_encoder.encode(_preformat_numbers(value, "$"))
    return encoded


def _preformat_numbers(value: Any, path: str) -> Any:
    """A copy with every float (and large integer) replaced by its exact JCS text."""
    if isinstance(value, dict):
        return {k: _preformat_numbers(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_preformat_numbers(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) or (
        isinstance(value, int) and not isinstance(value, bool) and abs(value) > _MAX_SAFE_INTEGER
    ):
        return msgspec.Raw(_canonicalize_exactly_at(value, path))
    return value


def _canonicalize_exactly_at(value: Any, path: str) -> bytes:
    parts: list[str] = []
    _write(value, parts, path)
    return "".join(parts).encode("utf-8")


def _canonicalize_exactly(value: Any) -> bytes:
    parts: list[str] = []
    _write(value, parts, "$")
    text = "".join(parts)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        path = _first_lone_surrogate(value, "$") or "$"
        _refuse(path, "contains a lone surrogate, which is not valid Unicode")


def _refuse(path: str, message: str) -> NoReturn:
    """Refuse a value that has no canonical form, naming its field as validation errors do."""
    field = path.removeprefix("$").removeprefix(".") or "$"
    raise ValidationFailed(f"{field}: {message}", errors=[FieldError(field, message)])


def _first_lone_surrogate(value: Any, path: str) -> str | None:
    """The path of the first string (or key) that UTF-8 cannot encode, as ``_write`` spells paths."""
    if isinstance(value, str):
        return None if _encodes(value) else path
    if isinstance(value, dict):
        children = [(k, v, f"{path}.{k}") for k, v in value.items()]
    elif isinstance(value, list | tuple):
        children = [("", v, f"{path}[{i}]") for i, v in enumerate(value)]
    else:
        return None
    for key, child, child_path in children:
        found = child_path if not _encodes(str(key)) else _first_lone_surrogate(child, child_path)
        if found:
            return found
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
            _refuse(
                path, f"integer {value} cannot be carried exactly by a JSON number (RFC 8785 uses doubles)"
            )
    elif isinstance(value, float):
        out.append(format_number(value, path))
    elif isinstance(value, dict):
        out.append("{")
        keys = sorted(value, key=_utf16_key)
        for i, key in enumerate(keys):
            if not isinstance(key, str):
                _refuse(path, "object keys must be strings")
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
        _refuse(path, f"{type(value).__name__} is not a JSON value")


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
        _refuse(path, "NaN and Infinity are not JSON numbers")
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
