"""Image references: a port of the Go SDK's imageref.go (Docker's grammar),
with the same checks in the same order and the same messages:

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ domain "/" ] path          (at most 255 characters with docker.io/[library/] when
                                                implied; not 64 lowercase hex digits, an image id to Docker)
    domain     := host [ ":" port ]            DNS labels joined by ".", or "[" IPv6 "]"
    path       := component { "/" component }  [a-z0-9]+ joined by ".", "_", "__" or "-"+
    tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
    digest     := algorithm ":" hex            sha256 (64), sha384 (96) or sha512 (128) lowercase hex

Like Go, it works on the reference's UTF-8 bytes.
"""

from __future__ import annotations

from typing import Optional, Tuple

from . import _go

MAX_IMAGE_NAME_LENGTH = 255
_DIGEST_HEX_LENGTHS = {b"sha256": 64, b"sha384": 96, b"sha512": 128}
_HEX_LOWER = frozenset(b"0123456789abcdef")
_IPV6 = frozenset(b"0123456789abcdefABCDEF:")
_DIGITS = frozenset(b"0123456789")


def _lower_alnum(c: int) -> bool:
    return 0x61 <= c <= 0x7A or 0x30 <= c <= 0x39


def _upper(c: int) -> bool:
    return 0x41 <= c <= 0x5A


def _word(c: int) -> bool:
    return _lower_alnum(c) or _upper(c) or c == 0x5F


def _rune_at(b: bytes, i: int) -> str:
    r, _ = _go._decode_rune(b, i)
    return _go.quote_rune(0xFFFD if r is None else r)


def _cut(b: bytes, sep: bytes) -> Tuple[bytes, bytes, bool]:
    i = b.find(sep)
    if i < 0:
        return b, b"", False
    return b[:i], b[i + len(sep):], True


def image_ref_problem(ref: str) -> Optional[str]:
    """ValidateImageRef: None for a valid reference, else what is wrong."""
    b = _go.utf8(ref)
    if b == b"":
        return "it is empty"
    name, digest, has_digest = _cut(b, b"@")
    if has_digest:
        problem = _digest_problem(digest)
        if problem:
            return problem
    i = name.rfind(b":")
    if i >= 0 and b"/" not in name[i + 1:]:
        problem = _tag_problem(name[i + 1:])
        if problem:
            return problem
        name = name[:i]
    if name == b"":
        return "the name before the tag or digest is empty"
    if len(name) == 64 and all(c in _HEX_LOWER for c in name):
        return "the name is 64 hex digits, which Docker refuses as a repository name (it reads as an image ID)"
    n, implied = _normalized_name_length(name)
    if n > MAX_IMAGE_NAME_LENGTH:
        if implied:
            return "the name is %d characters once Docker adds the implied %s; at most %d" % (
                n, _go.quote(implied), MAX_IMAGE_NAME_LENGTH)
        return "the name is %d characters; at most %d" % (n, MAX_IMAGE_NAME_LENGTH)
    return _name_problem(name)


def _normalized_name_length(name: bytes) -> Tuple[int, bytes]:
    """normalizedNameLength: the length of name as Docker stores it
    (docker.io/[library/] implied, index.docker.io read as docker.io) and
    what Docker puts in front (b"" when nothing)."""
    first, rest, has_slash = _cut(name, b"/")
    is_registry = any(c in b".:" or _upper(c) for c in first) or first == b"localhost"
    if not has_slash:
        implied = b"docker.io/library/"
        return len(implied) + len(name), implied
    if not is_registry:
        implied = b"docker.io/"
        return len(implied) + len(name), implied
    if first == b"index.docker.io":
        first = b"docker.io"
    if first == b"docker.io" and b"/" not in rest:
        implied = b"library/"
        return len(first) + 1 + len(implied) + len(rest), implied
    return len(first) + 1 + len(rest), b""


def _name_problem(name: bytes) -> Optional[str]:
    path_problem = _path_problem(name)
    if path_problem is None:
        return None
    first, rest, has_slash = _cut(name, b"/")
    if not has_slash:
        return path_problem
    domain_problem = _domain_problem(first)
    if domain_problem is None:
        return _path_problem(rest)
    if any(c in b".:[]" or _upper(c) for c in first) or first == b"localhost":
        return domain_problem
    return path_problem


def _path_problem(path: bytes) -> Optional[str]:
    for c in path.split(b"/"):
        problem = _component_problem(c)
        if problem:
            return problem
    return None


def _component_problem(c: bytes) -> Optional[str]:
    if c == b"":
        return "a path component is empty (a '/' at an end or two in a row)"
    q = _go.quote(c)
    i = 0
    while i < len(c):
        ch = c[i]
        if _lower_alnum(ch):
            pass
        elif _upper(ch):
            return "the repository %s has upper-case letters; it must be lowercase" % q
        elif ch in b"._-":
            if i == 0 or i == len(c) - 1:
                return "the repository %s must start and end with a lowercase letter or digit" % q
            j = i + 1
            if ch == 0x5F:
                if c[j] == 0x5F:
                    j += 1
            elif ch == 0x2D:
                while j < len(c) and c[j] == 0x2D:
                    j += 1
            if j >= len(c) or not _lower_alnum(c[j]):
                return ("the repository %s has %s where a separator ('.', '_', '__' or '-') must be followed by a "
                        "letter or digit") % (q, _go.quote(c[i:min(j + 1, len(c))]))
            i = j - 1
        else:
            return ("the repository %s has the character %s; only lowercase letters, digits, '.', '_', '-' and '/' "
                    "are allowed") % (q, _rune_at(c, i))
        i += 1
    return None


def _domain_problem(d: bytes) -> Optional[str]:
    q = _go.quote(d)
    if d.startswith(b"["):
        end = d.find(b"]")
        if end < 0:
            return "the registry %s opens '[' without closing it" % q
        ip = d[1:end]
        if ip == b"" or any(c not in _IPV6 for c in ip):
            return "the registry %s is not an IPv6 address in brackets" % q
        port = d[end + 1:]
        has_port = False
        if port != b"":
            if port[0] != 0x3A:
                return "the registry %s has %s after its address; only :PORT may follow" % (q, _go.quote(port))
            port, has_port = port[1:], True
    else:
        host, port, has_port = _cut(d, b":")
        for label in host.split(b"."):
            problem = _label_problem(q, label)
            if problem:
                return problem
    if has_port and (port == b"" or any(c not in _DIGITS for c in port)):
        return "the registry %s has port %s; a port is digits" % (q, _go.quote(port))
    return None


def _label_problem(q: str, label: bytes) -> Optional[str]:
    if label == b"":
        return "the registry %s has an empty name part" % q
    for i, ch in enumerate(label):
        if _lower_alnum(ch) or _upper(ch):
            continue
        if ch == 0x2D and 0 < i < len(label) - 1:
            continue
        return "the registry %s has %s where letters, digits and inner '-' are allowed" % (q, _rune_at(label, i))
    return None


def _tag_problem(tag: bytes) -> Optional[str]:
    if tag == b"":
        return "the tag after ':' is empty"
    if len(tag) > 128:
        return "the tag is %d characters; at most 128" % len(tag)
    for i, ch in enumerate(tag):
        if _word(ch) or (i > 0 and ch in b".-"):
            continue
        if i == 0:
            return "the tag %s must start with a letter, digit or '_'" % _go.quote(tag)
        return ("the tag %s has the character %s; only letters, digits, '_', '.' and '-' are allowed"
                % (_go.quote(tag), _rune_at(tag, i)))
    return None


def _digest_problem(d: bytes) -> Optional[str]:
    alg, hex_, ok = _cut(d, b":")
    if not ok:
        return "the digest %s is not ALGORITHM:HEX (like sha256:…)" % _go.quote(d)
    want = _DIGEST_HEX_LENGTHS.get(alg)
    if want is None:
        return "the digest algorithm %s is not sha256, sha384 or sha512" % _go.quote(alg)
    if len(hex_) != want or any(c not in _HEX_LOWER for c in hex_):
        return "the %s digest must be %d lowercase hex digits, got %d characters" % (alg.decode(), want, len(hex_))
    return None
