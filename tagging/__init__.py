"""Tag brand-new videos and give them a place in the recommender from content alone.

Quick use:
    >>> import tagging
    >>> result = tagging.analyze("clip.mp4", caption="Surfing at dawn #surf")
    >>> [t.id for t in result.tags]
    >>> tagging.ingest(["clip.mp4"], db="tagging.lancedb")
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from tagging.errors import TaggingError

logging.getLogger("tagging").addHandler(logging.NullHandler())

__version__ = "0.1.0"

_DEFAULT_PIPELINE: Any = None


def get_pipeline() -> Any:
    """The process-wide default :class:`~tagging.pipeline.Pipeline` (models load once)."""
    global _DEFAULT_PIPELINE
    if _DEFAULT_PIPELINE is None:
        from tagging.pipeline import Pipeline

        _DEFAULT_PIPELINE = Pipeline()
    return _DEFAULT_PIPELINE


def analyze(path: str | Path, video_id: str | None = None, caption: Any = None, metadata: dict | None = None) -> Any:
    """Analyse one video with the default pipeline and return a ``VideoResult``.

    Raises:
        TaggingError: A typed error naming the file and the reason.
    """
    return get_pipeline().analyze(path, video_id, caption, metadata)


def ingest(paths: Any, db: str | Path | None = None, caption: Any = None, video_id: str | None = None) -> Any:
    """Analyse a path, a folder or a list of them and upsert the rows into the LanceDB catalog at ``db``.

    Args:
        paths: A file, a folder (its media files), or a list of them.
        db: Database directory (default ``$TAGGING_DB`` or ``tagging.lancedb``).
        caption: Caption applied to every file.
        video_id: Catalog id; only for a single file.

    Returns:
        An ``IngestReport`` with the results written and the failures recorded.

    Raises:
        ValueError: ``video_id`` given for more than one file.
        CatalogError: The catalog write failed.
    """
    from tagging.inputs import expand_paths

    files = expand_paths([paths] if isinstance(paths, (str, Path)) else list(paths))
    if video_id is not None and len(files) != 1:
        raise ValueError("video_id needs exactly one file")
    return get_pipeline().ingest([{"path": f, "caption": caption, "video_id": video_id} for f in files], db)


__all__ = ["TaggingError", "analyze", "get_pipeline", "ingest", "__version__"]
