"""Entity tags of versioned resources (alerts, incidents, users, agencies, systems):
the row's version, sent as ``ETag: "3"`` and sent back as ``If-Match``."""

from __future__ import annotations


def etag(version: int) -> str:
    return f'"{version}"'


def if_match_versions(header: str) -> set[int] | None:
    """The versions an ``If-Match`` header names (``"3"``, ``W/"3"``, ``3``, or a
    comma-separated list); ``None`` for ``*`` (any version). Raises ValueError for
    anything else — each resource answers that with its own 400."""
    if header.strip() == "*":
        return None
    versions: set[int] = set()
    for part in header.split(","):
        tag = part.strip()
        tag = tag[2:] if tag.startswith(("W/", "w/")) else tag
        tag = tag.strip().strip('"')
        if not tag.isdigit():
            raise ValueError(f"not an entity tag: {part.strip()!r}")
        versions.add(int(tag))
    return versions


def single_version(header: str) -> int | None:
    """The one version an ``If-Match`` header names, ``None`` for ``*``. Raises
    ValueError for a list or a malformed tag (these resources take one version)."""
    versions = if_match_versions(header)
    if versions is None:
        return None
    if len(versions) != 1 or "," in header:
        raise ValueError("one entity tag expected")
    return versions.pop()
