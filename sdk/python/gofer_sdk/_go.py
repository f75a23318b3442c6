"""Faithful ports of the few Go standard library functions the Go SDK's
output and error messages depend on, so that the Python SDK prints the same
bytes:

- time.ParseDuration and time.Duration.String;
- encoding/json string encoding with HTML escaping off, and the two-space
  indented layout of json.Encoder.SetIndent("", "  ");
- strconv.Quote / QuoteRune (the %q verb) and strings.TrimSpace.

Go strings are bytes, so these functions work on UTF-8 bytes where Go
does. A Python str cannot hold invalid UTF-8 except lone surrogates; those
are encoded with "surrogatepass" and then treated as Go treats invalid
bytes.
"""

from __future__ import annotations

import unicodedata
from typing import Any, List, Optional, Tuple

MIN_INT64 = -(1 << 63)
MAX_INT64 = (1 << 63) - 1

NANOSECOND = 1
MICROSECOND = 1000 * NANOSECOND
MILLISECOND = 1000 * MICROSECOND
SECOND = 1000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE


def utf8(s: str) -> bytes:
    """The bytes Go would hold for s."""
    return s.encode("utf-8", "surrogatepass")


def _decode_rune(b: bytes, i: int) -> Tuple[Optional[int], int]:
    """utf8.DecodeRune: (rune, size), or (None, 1) for an invalid byte."""
    c = b[i]
    if c < 0x80:
        return c, 1
    for size in (2, 3, 4):
        chunk = b[i : i + size]
        if len(chunk) < size:
            break
        try:
            s = chunk.decode("utf-8")  # strict: no surrogates, no overlongs
        except UnicodeDecodeError:
            continue
        if len(s) == 1:
            return ord(s), size
    return None, 1


# ---------------------------------------------------------------- durations


class DurationError(ValueError):
    """time.ParseDuration failed."""


_UNITS = {
    b"ns": NANOSECOND,
    b"us": MICROSECOND,
    "µs".encode(): MICROSECOND,  # U+00B5 micro sign
    "μs".encode(): MICROSECOND,  # U+03BC Greek letter mu
    b"ms": MILLISECOND,
    b"s": SECOND,
    b"m": MINUTE,
    b"h": HOUR,
}

_U64 = (1 << 64) - 1


def _leading_int(s: bytes) -> Tuple[int, bytes]:
    x = 0
    i = 0
    while i < len(s):
        c = s[i]
        if c < 0x30 or c > 0x39:
            break
        if x > (1 << 63) // 10:
            raise DurationError("overflow")
        x = x * 10 + c - 0x30
        if x > 1 << 63:
            raise DurationError("overflow")
        i += 1
    return x, s[i:]


def _leading_fraction(s: bytes) -> Tuple[int, float, bytes]:
    x = 0
    scale = 1.0
    overflow = False
    i = 0
    while i < len(s):
        c = s[i]
        if c < 0x30 or c > 0x39:
            break
        i += 1
        if overflow:
            continue
        if x > ((1 << 63) - 1) // 10:
            overflow = True
            continue
        y = x * 10 + c - 0x30
        if y > 1 << 63:
            overflow = True
            continue
        x = y
        scale *= 10
    return x, scale, s[i:]


def parse_duration(text: str) -> int:
    """time.ParseDuration: the nanoseconds in a duration string such as
    "300ms", "-1.5h" or "2h45m". Raises DurationError."""
    orig = text
    s = utf8(text)
    d = 0
    neg = False
    if s and s[0] in b"-+":
        neg = s[0] == 0x2D
        s = s[1:]
    if s == b"0":
        return 0
    if not s:
        raise DurationError("invalid duration %s" % quote(orig))
    while s:
        if not (s[0] == 0x2E or 0x30 <= s[0] <= 0x39):
            raise DurationError("invalid duration %s" % quote(orig))
        pl = len(s)
        try:
            v, s = _leading_int(s)
        except DurationError:
            raise DurationError("invalid duration %s" % quote(orig)) from None
        pre = pl != len(s)
        post = False
        f, scale = 0, 1.0
        if s and s[0] == 0x2E:
            s = s[1:]
            pl = len(s)
            f, scale, s = _leading_fraction(s)
            post = pl != len(s)
        if not pre and not post:
            raise DurationError("invalid duration %s" % quote(orig))
        i = 0
        while i < len(s):
            c = s[i]
            if c == 0x2E or 0x30 <= c <= 0x39:
                break
            i += 1
        if i == 0:
            raise DurationError("missing unit in duration %s" % quote(orig))
        u, s = s[:i], s[i:]
        unit = _UNITS.get(u)
        if unit is None:
            raise DurationError("unknown unit %s in duration %s" % (quote(u), quote(orig)))
        if v > (1 << 63) // unit:
            raise DurationError("invalid duration %s" % quote(orig))
        v *= unit
        if f > 0:
            # float64 arithmetic and truncation, exactly as Go does it.
            v += int(float(f) * (float(unit) / scale))
            if v > 1 << 63:
                raise DurationError("invalid duration %s" % quote(orig))
        d += v
        if d > 1 << 63:
            raise DurationError("invalid duration %s" % quote(orig))
    if neg:
        return -d
    if d > MAX_INT64:
        raise DurationError("invalid duration %s" % quote(orig))
    return d


def _fmt_frac(v: int, prec: int) -> Tuple[str, int]:
    digits = []
    printing = False
    for _ in range(prec):
        digit = v % 10
        printing = printing or digit != 0
        if printing:
            digits.append(chr(0x30 + digit))
        v //= 10
    if printing:
        digits.append(".")
    return "".join(reversed(digits)), v


def format_duration(ns: int) -> str:
    """time.Duration(ns).String(): "1m30s", "500ms", "1.5µs", "2h0m0s"."""
    if not MIN_INT64 <= ns <= MAX_INT64:
        raise OverflowError("duration %d ns does not fit in an int64" % ns)
    neg = ns < 0
    u = -ns if neg else ns  # fits: uint64 holds 2^63
    if u < SECOND:
        if u == 0:
            return "0s"
        if u < MICROSECOND:
            prec, unit = 0, "ns"
        elif u < MILLISECOND:
            prec, unit = 3, "µs"
        else:
            prec, unit = 6, "ms"
        frac, u = _fmt_frac(u, prec)
        out = str(u) + frac + unit
    else:
        frac, u = _fmt_frac(u, 9)
        out = str(u % 60) + frac + "s"
        u //= 60
        if u > 0:
            out = str(u % 60) + "m" + out
            u //= 60
            if u > 0:
                out = str(u) + "h" + out
    return "-" + out if neg else out


# ------------------------------------------------------------ %q and trims


def _is_print(r: int) -> bool:
    """unicode.IsPrint: letters, marks, numbers, punctuation, symbols and
    the ASCII space."""
    if r == 0x20:
        return True
    return chr(r).isprintable()


_SHORT_ESCAPES = {0x07: "\\a", 0x08: "\\b", 0x0C: "\\f", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x0B: "\\v"}


def _escaped_rune(r: int, q: str) -> str:
    if r == ord(q) or r == 0x5C:
        return "\\" + chr(r)
    if _is_print(r):
        return chr(r)
    if r in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[r]
    if r < 0x20 or r == 0x7F:
        return "\\x%02x" % r
    if r > 0x10FFFF or 0xD800 <= r <= 0xDFFF:
        r = 0xFFFD
    if r < 0x10000:
        return "\\u%04x" % r
    return "\\U%08x" % r


def quote(s: Any) -> str:
    """strconv.Quote (Go's %q of a string); s is a str or Go bytes."""
    b = utf8(s) if isinstance(s, str) else bytes(s)
    out = ['"']
    i = 0
    while i < len(b):
        r, size = _decode_rune(b, i)
        if r is None:
            out.append("\\x%02x" % b[i])
        else:
            out.append(_escaped_rune(r, '"'))
        i += size
    out.append('"')
    return "".join(out)


def quote_rune(r: int) -> str:
    """strconv.QuoteRune (Go's %q of a rune)."""
    return "'" + _escaped_rune(r, "'") + "'"


def is_space(c: str) -> bool:
    """unicode.IsSpace."""
    o = ord(c)
    if o <= 0xFF:
        return c in "\t\n\v\f\r \x85\xa0"
    return unicodedata.category(c) in ("Zs", "Zl", "Zp")


def trim_space(s: str) -> str:
    """strings.TrimSpace."""
    start, end = 0, len(s)
    while start < end and is_space(s[start]):
        start += 1
    while end > start and is_space(s[end - 1]):
        end -= 1
    return s[start:end]


# --------------------------------------------------------------------- JSON


class Struct:
    """A JSON object whose fields keep their order (a Go struct), as
    opposed to a dict, whose keys are sorted (a Go map)."""

    __slots__ = ("fields",)

    def __init__(self, fields: List[Tuple[str, Any]]):
        self.fields = fields


_HEX = "0123456789abcdef"


def json_string(s: str) -> str:
    """encoding/json's encoding of a string with SetEscapeHTML(false):
    '"' and '\\' and control characters escaped (\\b \\f \\n \\r \\t or
    \\u00XX), U+2028 and U+2029 escaped, invalid UTF-8 as \\ufffd, all else
    (including "<", ">", "&", DEL and non-ASCII) as it is."""
    b = utf8(s)
    out = bytearray(b'"')
    start = 0
    i = 0
    n = len(b)
    while i < n:
        c = b[i]
        if c < 0x80:
            if c >= 0x20 and c != 0x22 and c != 0x5C:
                i += 1
                continue
            out += b[start:i]
            if c in (0x22, 0x5C):
                out += bytes((0x5C, c))
            elif c == 0x08:
                out += b"\\b"
            elif c == 0x0C:
                out += b"\\f"
            elif c == 0x0A:
                out += b"\\n"
            elif c == 0x0D:
                out += b"\\r"
            elif c == 0x09:
                out += b"\\t"
            else:
                out += ("\\u00" + _HEX[c >> 4] + _HEX[c & 0xF]).encode()
            i += 1
            start = i
            continue
        r, size = _decode_rune(b, i)
        if r is None:
            out += b[start:i]
            out += b"\\ufffd"
            i += 1
            start = i
            continue
        if r in (0x2028, 0x2029):
            out += b[start:i]
            out += ("\\u202" + _HEX[r & 0xF]).encode()
            i += size
            start = i
            continue
        i += size
    out += b[start:]
    out += b'"'
    return out.decode("utf-8")


def _sort_key(k: str) -> bytes:
    return utf8(k)


def json_indent(value: Any, prefix: str = "", indent: str = "  ") -> str:
    """json.Encoder with SetIndent(prefix, indent) and SetEscapeHTML(false),
    without the trailing newline. Struct fields keep their order; dict keys
    are sorted by their UTF-8 bytes, as Go sorts map keys."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json_string(value)
    inner = prefix + indent
    if isinstance(value, (Struct, dict)):
        if isinstance(value, Struct):
            items = value.fields
        else:
            items = [(k, value[k]) for k in sorted(value, key=_sort_key)]
        if not items:
            return "{}"
        parts = [
            "\n" + inner + json_string(k) + ": " + json_indent(v, inner, indent) for k, v in items
        ]
        return "{" + ",".join(parts) + "\n" + prefix + "}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        parts = ["\n" + inner + json_indent(v, inner, indent) for v in value]
        return "[" + ",".join(parts) + "\n" + prefix + "]"
    raise TypeError("cannot encode %s as JSON" % type(value).__name__)
