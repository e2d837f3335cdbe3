"""Category taxonomy: load, validate and describe the categories tags come from.

A taxonomy is a JSON file ``{"name", "version", "categories": [...]}`` where each
category has ``id`` (lower-case slug), ``name``, ``description``, ``prompts``
(short phrases describing what such a video shows), optional ``subtopics`` and
optional ``audio_cues`` (``{"music": weight, "speech": weight}``). The default
ships in ``tagging/data/taxonomy.json``; pass your own path to replace it.

Names in other languages are optional: ``names`` (``{"zh": ["舞蹈", "跳舞"], ...}``, words
that name the category in that language) and ``subtopic_names`` (``{"fr": [...]}``, one
per sub-topic, in the order of ``subtopics``). They only feed keyword matching
(:meth:`Category.keywords`); descriptions and prompts stay English, since the
multilingual text models match across languages.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from tagging.errors import TaxonomyError
from tagging.language import keyword_pattern

_ID = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
REQUIRED_DEFAULT_IDS = (
    "dance music comedy sports fitness food animals beauty fashion gaming travel nature science "
    "education diy family vehicles talk news art animation film business technology"
).split()
AUDIO_CUES = ("music", "speech")
_WIDE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")  # scripts with one-character words


@dataclass
class Category:
    """One category of a taxonomy."""

    id: str
    name: str
    description: str
    prompts: list[str] = field(default_factory=list)
    subtopics: list[str] = field(default_factory=list)
    audio_cues: dict[str, float] = field(default_factory=dict)
    names: dict[str, list[str]] = field(default_factory=dict)
    subtopic_names: dict[str, list[str]] = field(default_factory=dict)

    def texts(self) -> list[str]:
        """Phrases that describe the category for text similarity (description first)."""
        return [f"{self.name}: {self.description}", *self.prompts]

    def keywords(self, language: str = "en") -> set[str]:
        """Words and phrases that, written in a text, name this category.

        Args:
            language: The text's language; English words always count (hashtags are
                mostly English), another language's ``names`` and ``subtopic_names`` count
                when the text is in that language.
        """
        words = {self.id, self.name, *self.subtopics}
        for part in re.split(r"[&/,]", self.name):
            words.add(part.strip())
        if language != "en":
            words.update(self.names.get(language, []))
            words.update(self.subtopic_names.get(language, []))
        return {w.lower() for w in words if len(w.strip()) >= (2 if _WIDE.search(w) else 3)}

    def subtopic_words(self, index: int, language: str = "en") -> list[str]:
        """The sub-topic at ``index`` as written in English and, if given, in ``language``."""
        words = [self.subtopics[index]]
        local = self.subtopic_names.get(language, []) if language != "en" else []
        if index < len(local) and local[index] not in words:
            words.append(local[index])
        return words


@dataclass
class Taxonomy:
    """An ordered list of categories with a name and version."""

    name: str
    version: str
    categories: list[Category]
    source: str = "<memory>"
    _patterns: dict[str, list[list[tuple[str, re.Pattern[str]]]]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for cat in self.categories:
            if not _ID.match(cat.id):
                raise TaxonomyError(self.source, f"category id {cat.id!r} must match {_ID.pattern}")
            if cat.id in seen:
                raise TaxonomyError(self.source, f"duplicate category id {cat.id!r}")
            seen.add(cat.id)
            for lang, subs in cat.subtopic_names.items():
                if len(subs) != len(cat.subtopics):
                    raise TaxonomyError(self.source, f"category {cat.id!r}: subtopic_names[{lang!r}] has {len(subs)} "
                                        f"names for {len(cat.subtopics)} sub-topics")
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

    def keyword_patterns(self, language: str = "en") -> list[list[tuple[str, re.Pattern[str]]]]:
        """Per category, ``(word, pattern)`` for the words that name it in a text in ``language``.

        The patterns search :func:`tagging.language.normalize`-d text.
        """
        if language not in self._patterns:
            self._patterns[language] = [
                [(k, keyword_pattern(k)) for k in sorted(c.keywords(language))] for c in self.categories
            ]
        return self._patterns[language]

    @property
    def fingerprint(self) -> str:
        """Short hash of the content, used in cache keys and model manifests."""
        blob = json.dumps([c.__dict__ for c in self.categories], sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]

    @property
    def taxonomy_id(self) -> str:
        """``name@version+fingerprint``."""
        return f"{self.name}@{self.version}+{self.fingerprint}"


def _words(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else [str(w) for w in value]


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
                names={str(k): _words(v) for k, v in c.get("names", {}).items()},
                subtopic_names={str(k): [str(w) for w in v] for k, v in c.get("subtopic_names", {}).items()},
            )
            for c in raw["categories"]
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TaxonomyError(source, f"malformed taxonomy: {exc!r}") from exc
    return Taxonomy(str(raw.get("name", "custom")), str(raw.get("version", "1")), cats, source)
