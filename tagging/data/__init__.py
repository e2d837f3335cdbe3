"""Packaged data: the default taxonomy (``taxonomy.json``) and the ImageNet class list."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def imagenet_classes() -> list[tuple[str, str, str]]:
    """Return the 1000 ImageNet classes as (synset, lemmas, definition) in output order."""
    text = resources.files("tagging.data").joinpath("imagenet_classes.tsv").read_text()
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    return [(r[1], r[2], r[3]) for r in rows]


