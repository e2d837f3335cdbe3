"""Feature extractors, one per modality, behind one registry.

Importing this package registers the built-in extractors; heavy models load only
when an extractor is first used.
"""

from __future__ import annotations

from tagging.extractors import text as _text  # noqa: F401  (registers "text-minilm")
from tagging.extractors.base import (
    AudioCues,
    ClassHit,
    Cues,
    Extractor,
    Features,
    FrameCues,
    ItemContent,
    TextCues,
    get_extractor,
    l2_normalize,
    list_extractors,
    register,
)

for _mod in ("multilingual", "frames", "clip", "audio"):
    try:
        __import__(f"tagging.extractors.{_mod}")
    except ModuleNotFoundError as _exc:  # module not written yet / optional
        if _exc.name != f"tagging.extractors.{_mod}":
            raise

__all__ = [
    "AudioCues",
    "ClassHit",
    "Cues",
    "Extractor",
    "Features",
    "FrameCues",
    "ItemContent",
    "TextCues",
    "get_extractor",
    "l2_normalize",
    "list_extractors",
    "register",
]
