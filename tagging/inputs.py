"""Turning what a user hands over (paths, folders, captions) into pipeline inputs."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import unquote, urlparse

from tagging.errors import MediaError, MediaNotFound, TaggingError

MEDIA_EXTENSIONS = {".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v", ".m4a", ".mp3", ".wav", ".ogg", ".flac", ".aac", ".ts", ".3gp"}
Caption = str | dict[str, Any] | None


def caption_text(caption: Caption) -> str:
    """Flatten a caption (a string or ``{"title", "description", "hashtags"}``) into one text."""
    if caption is None:
        return ""
    if isinstance(caption, str):
        return caption.strip()
    if not isinstance(caption, dict):
        raise TaggingError("caption", f"a caption is a string or an object with title/description/hashtags, not {type(caption).__name__}")
    parts = [str(caption.get("title", "")).strip(), str(caption.get("description", "")).strip()]
    tags = caption.get("hashtags") or []
    if isinstance(tags, str):
        tags = tags.split()
    parts.append(" ".join(t if str(t).startswith("#") else f"#{t}" for t in tags))
    return ". ".join(p for p in parts if p)


def default_video_id(path: str | Path) -> str:
    """A stable id from the file name and a hash of its size and first/last MiB.

    The same bytes get the same id wherever the file lies, so re-ingesting a file
    updates its row instead of adding one.
    """
    p = Path(path)
    h = hashlib.sha1()
    size = p.stat().st_size
    h.update(str(size).encode())
    with open(p, "rb") as fh:
        h.update(fh.read(1 << 20))
        if size > 1 << 20:
            fh.seek(max(1 << 20, size - (1 << 20)))
            h.update(fh.read())
    return f"{id_stem(p.stem)}-{h.hexdigest()[:10]}"


def id_stem(name: str) -> str:
    """The readable part of a derived video id: ``name`` reduced to a safe slug (at most 80 chars)."""
    return re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9_.-]+", "-", name)).strip("-._")[:80].strip("-._") or "video"


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Expand directories into the media files they hold (sorted, not recursive)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(c for c in p.iterdir() if c.is_file() and c.suffix.lower() in MEDIA_EXTENSIONS))
        else:
            out.append(p)
    return out


def load_captions(paths: Iterable[str | Path], captions_file: str | Path | None = None) -> dict[str, Any]:
    """Caption sidecars: ``captions_file``, else ``captions.json`` inside each given folder.

    Returns:
        File name -> caption (a string or ``{"title", "description", "hashtags"}``).

    Raises:
        TaggingError: A captions file is not valid JSON.
    """
    files = [Path(captions_file)] if captions_file else [Path(p) / "captions.json" for p in paths if Path(p).is_dir()]
    out: dict[str, Any] = {}
    for f in files:
        if f.exists():
            try:
                out.update(json.loads(f.read_text()))
            except ValueError as exc:
                raise TaggingError(str(f), f"captions file is not valid JSON: {exc}") from exc
    return out


def resolve_source(source: str | Path) -> Path:
    """A local path from a path or ``file://`` URI.

    Raises:
        MediaError: Unsupported URI scheme.
        MediaNotFound: The file does not exist or the path cannot be read (e.g. a name too long).
    """
    s = str(source)
    if "://" in s:
        u = urlparse(s)
        if u.scheme != "file":
            raise MediaError(s, f"unsupported URI scheme {u.scheme!r} (use a local path or file://)")
        s = unquote(u.path)
    p = Path(s)
    try:
        is_file = p.is_file()
    except OSError as exc:  # a name too long, a path through a file, ...
        raise MediaNotFound(str(source), f"cannot read the path ({exc.strerror or type(exc).__name__})") from None
    if not is_file:
        raise MediaNotFound(str(source), "file does not exist or is not a regular file")
    return p
