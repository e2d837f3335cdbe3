"""Category taxonomy: load, validate and describe the categories tags come from.

A taxonomy is a JSON file ``{"name", "version", "categories": [...]}`` where each
category has ``id`` (lower-case slug), ``name``, ``description``, ``prompts``
(short phrases describing what such a video shows), optional ``subtopics`` and
optional ``audio_cues`` (``{"music": weight, "speech": weight}``). The default
ships in ``tagging/data/taxonomy.json``; pass your own path to replace it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from tagging.errors import TaxonomyError

_ID = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
REQUIRED_DEFAULT_IDS = (
    "dance music comedy sports fitness food animals beauty fashion gaming travel nature science "
    "education diy family vehicles talk news art animation film business technology"
).split()
AUDIO_CUES = ("music", "speech")


@dataclass
class Category:
    """One category of a taxonomy."""

    id: str
    name: str
    description: str
    prompts: list[str] = field(default_factory=list)
    subtopics: list[str] = field(default_factory=list)
    audio_cues: dict[str, float] = field(default_factory=dict)

    def texts(self) -> list[str]:
        """Phrases that describe the category for text similarity (description first)."""
        return [f"{self.name}: {self.description}", *self.prompts]

    def keywords(self) -> set[str]:
        """Lower-case words and phrases that, written in a caption, name this category."""
        words = {self.id, self.name.lower(), *(s.lower() for s in self.subtopics)}
        for part in re.split(r"[&/,]", self.name.lower()):
            if part.strip():
                words.add(part.strip())
        return {w for w in words if len(w) >= 3}


@dataclass
class Taxonomy:
    """An ordered list of categories with a name and version."""

    name: str
    version: str
    categories: list[Category]
    source: str = "<memory>"

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for cat in self.categories:
            if not _ID.match(cat.id):
                raise TaxonomyError(self.source, f"category id {cat.id!r} must match {_ID.pattern}")
            if cat.id in seen:
                raise TaxonomyError(self.source, f"duplicate category id {cat.id!r}")
            seen.add(cat.id)
            bad = set(cat.audio_cues) - set(AUDIO_CUES)
            if bad:
                raise TaxonomyError(self.source, f"category {cat.id!r}: unknown audio cues {sorted(bad)}")
        if not self.categories:
            raise TaxonomyError(self.source, "taxonomy has no categories")

    @property
    def ids(self) -> list[str]:
        """Category ids in order."""
        return [c.id for c in self.categories]

    def __len__(self) -> int:
        return len(self.categories)

    def __getitem__(self, cat_id: str) -> Category:
        for cat in self.categories:
            if cat.id == cat_id:
                return cat
        raise KeyError(cat_id)

    @property
    def fingerprint(self) -> str:
        """Short hash of the content, used in cache keys and model manifests."""
        blob = json.dumps([c.__dict__ for c in self.categories], sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]

    @property
    def taxonomy_id(self) -> str:
        """``name@version+fingerprint``."""
        return f"{self.name}@{self.version}+{self.fingerprint}"


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Load a taxonomy file, or the packaged default when ``path`` is None.

    Args:
        path: A taxonomy JSON file.

    Returns:
        The validated taxonomy.

    Raises:
        TaxonomyError: The file is missing, not JSON, or malformed.
    """
    if path is None:
        source, text = "default", resources.files("tagging.data").joinpath("taxonomy.json").read_text()
    else:
        source = str(path)
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise TaxonomyError(source, f"cannot read taxonomy: {exc}") from exc
    try:
        raw = json.loads(text)
        cats = [
            Category(
                id=str(c["id"]),
                name=str(c.get("name", c["id"])),
                description=str(c.get("description", "")),
                prompts=[str(p) for p in c.get("prompts", [])],
                subtopics=[str(s) for s in c.get("subtopics", [])],
                audio_cues={str(k): float(v) for k, v in c.get("audio_cues", {}).items()},
            )
            for c in raw["categories"]
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TaxonomyError(source, f"malformed taxonomy: {exc!r}") from exc
    return Taxonomy(str(raw.get("name", "custom")), str(raw.get("version", "1")), cats, source)
