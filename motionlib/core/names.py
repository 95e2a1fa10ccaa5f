"""Names, tags and references (``name`` / ``name@3``), validated before anything touches disk."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from motionlib.core.errors import InvalidName

MAX_NAME = 100


def _check(kind: str, value: str, max_len: int) -> str:
    if not isinstance(value, str) or value == "":
        raise InvalidName(f"{kind} must not be empty")
    shown = value.encode("unicode_escape").decode("ascii")
    if len(value) > max_len:
        raise InvalidName(f"{kind} {shown!r} is longer than {max_len} characters")
    for ch in value:
        if ch in "/\\":
            raise InvalidName(f"{kind} {shown!r} contains a path separator {ch!r}")
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            raise InvalidName(f"{kind} {shown!r} contains a control or invisible character")
        if ch == "@":
            raise InvalidName(f"{kind} {shown!r} contains '@', which separates name and version")
    if value != value.strip():
        raise InvalidName(f"{kind} {shown!r} starts or ends with whitespace")
    if value.startswith((".", "-")):
        raise InvalidName(f"{kind} {shown!r} must not start with '.' or '-'")
    return value


def validate_name(name: str) -> str:
    """A motion name: any printable text without path separators, '@', control characters, or a
    leading '.'/'-'; at most 100 characters. Names are case-sensitive."""
    return _check("name", name, MAX_NAME)


def validate_tag(tag: str) -> str:
    """A tag, lower-cased: tags are case-insensitive (``Dance`` and ``dance`` are one tag)."""
    tag = _check("tag", tag, 64)
    if any(ch.isspace() for ch in tag) or "," in tag:
        raise InvalidName(f"tag {tag!r} must not contain whitespace or commas")
    return tag.lower()


def file_stem(text: str, fallback: str = "x") -> str:
    """A file-name-safe stem for a name or ``name@N`` (``wave@2`` -> ``wave-v2``)."""
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "-", text.replace("@", "-v")).strip("-.") or fallback


@dataclass(frozen=True)
class Ref:
    """``name`` (the latest version) or ``name@N``."""

    name: str
    version: int | None = None

    @classmethod
    def parse(cls, text: str) -> "Ref":
        name, sep, ver = text.rpartition("@")
        if not sep:
            return cls(validate_name(text))
        if ver in ("", "latest"):
            if ver == "":
                raise InvalidName(f"{text!r}: missing version after '@' (e.g. {name}@1)")
            return cls(validate_name(name))
        if not ver.isdigit() or int(ver) < 1:
            raise InvalidName(f"{text!r}: version must be a positive integer, as in {name}@1")
        return cls(validate_name(name), int(ver))

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"
