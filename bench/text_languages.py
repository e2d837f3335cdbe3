"""Per-language caption accuracy of each text extractor (issue 14), and their calibration.

Reads ``bench/labels/captions_multilingual.tsv`` (short captions we wrote, one category
each, in en / zh / fr / es and mixed with English hashtags; split into ``tune`` and
``test``) and ranks the taxonomy's categories for each caption from text alone, the way
the tagger's text modality does (``Tagger.score_text``):

* **embedding**: the similarity of the caption to the category texts only;
* **+ keywords**: the tagger's full text score, which also counts a category or sub-topic
  named outright (in English, or in the caption's language from the taxonomy's
  ``names`` / ``subtopic_names``).

Each extractor is measured alone (``english_text_extractor=None``); ``--routed A:B`` adds
a row for A with the captions detected as English scored by B (the default pipeline's
``text-e5:text-minilm``).

``--calibrate`` prints, for each extractor, the :class:`TextCalibration` that puts its
similarities on MiniLM's scale (quantile matching on the *tune* split: the share of
caption-to-category similarities under MiniLM's 0.28 and 0.34 on English tune captions
gives the center and center + scale of the other model; the same for the sub-topic
threshold 0.35). Reported numbers use the *test* split unless ``--split`` says otherwise.

Run:
    python bench/text_languages.py [--split test|tune|all] [--extractors text-minilm,text-muse,text-e5]
        [--routed text-e5:text-minilm] [--calibrate]
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from tagging.tags.tagger import Tagger, TaggerConfig

LABELS = Path(__file__).parent / "labels" / "captions_multilingual.tsv"
LANGS = ("en", "zh", "fr", "es", "mixed")


def read_captions(split: str) -> list[tuple[str, str, str]]:
    """``(lang, category, caption)`` rows of ``split`` ("all" for both)."""
    rows = []
    with LABELS.open(encoding="utf-8") as f:
        lines = [ln for ln in f if ln.strip() and not ln.startswith("#")]
    for r in csv.DictReader(lines, delimiter="\t"):
        if split in ("all", r["split"]):
            rows.append((r["lang"], r["category"], r["caption"]))
    return rows


def rank(tagger: Tagger, captions: list[str], keywords: bool) -> list[list[str]]:
    """Category ids best first, from each caption's text score."""
    tagger.config.keyword_score = 0.9 if keywords else 0.0
    ids = tagger.taxonomy.ids
    out = []
    for cap in captions:
        scores, _ = tagger.score_text({"caption": cap})
        out.append([ids[i] for i in np.argsort(-scores, kind="stable")])
    return out


def accuracy(rows: list[tuple[str, str, str]], ranked: list[list[str]]) -> dict[str, tuple[float, float, int]]:
    """Per language (and "all"): (top-1, top-3, n)."""
    hits: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for (lang, cat, _), r in zip(rows, ranked):
        for key in (lang, "all"):
            hits[key].append((r[0] == cat, cat in r[:3]))
    return {k: (float(np.mean([h[0] for h in v])), float(np.mean([h[1] for h in v])), len(v)) for k, v in hits.items()}


def alone(name: str, english: str | None = None) -> Tagger:
    """A tagger whose text scores come from ``name`` (English ones from ``english``, when given)."""
    return Tagger(None, TaggerConfig(english_text_extractor=english), text_extractor=name)


def best_sims(tagger: Tagger, captions: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """All caption-to-category best similarities and caption-to-sub-topic similarities, pooled."""
    emb = tagger.text.embed_texts(captions)
    cat = np.concatenate([(e @ emb.T).max(axis=0)[None, :] for e in tagger.category_embeddings()]).ravel()
    sub = np.concatenate([emb @ s.T for s in tagger.subtopics.embeddings() if len(s)], axis=1).ravel()
    return cat, sub


def calibrate(extractors: list[str]) -> None:
    """Print each extractor's calibration, matched to MiniLM's English quantiles on the tune split."""
    rows = read_captions("tune")
    caps = [c for _, _, c in rows]
    ref_cat, ref_sub = best_sims(alone("text-minilm"), [c for lang, _, c in rows if lang == "en"])
    q_center, q_top = float(np.mean(ref_cat < 0.28)), float(np.mean(ref_cat < 0.34))
    q_sub = float(np.mean(ref_sub < 0.35))
    print(f"MiniLM (English tune captions): 0.28 is quantile {q_center:.3f}, 0.34 is {q_top:.3f}; sub-topic 0.35 is {q_sub:.3f}")
    print("| extractor | center | scale | subtopic_threshold |\n|---|---|---|---|")
    for name in extractors:
        cat, sub = best_sims(alone(name), caps)
        center = float(np.quantile(cat, q_center))
        scale = float(np.quantile(cat, q_top)) - center
        print(f"| {name} | {center:.3f} | {scale:.3f} | {float(np.quantile(sub, q_sub)):.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="test", choices=("test", "tune", "all"))
    ap.add_argument("--extractors", default="text-minilm,text-muse,text-e5")
    ap.add_argument("--routed", default="text-e5:text-minilm", help="A:B, A with English scored by B ('' for none)")
    ap.add_argument("--calibrate", action="store_true", help="print each extractor's calibration (tune split)")
    args = ap.parse_args()
    names = args.extractors.split(",")
    if args.calibrate:
        calibrate(names)
        return
    rows = read_captions(args.split)
    caps = [c for _, _, c in rows]
    counts = {lang: sum(r[0] == lang for r in rows) for lang in LANGS}
    print(f"split: {args.split}, {len(rows)} captions ({', '.join(f'{k} {v}' for k, v in counts.items())}), "
          f"{len(alone(names[0]).taxonomy)} categories (chance top-1 0.04, top-3 0.12)\n")
    head = "| extractor | scoring | " + " | ".join(f"{lang} top-1 / top-3" for lang in (*LANGS, "all")) + " | ms / caption |"
    print(head + "\n" + "|---" * (head.count("|") - 1) + "|")
    variants = [(n, None) for n in names] + ([tuple(args.routed.split(":"))] if args.routed else [])
    for name, english in variants:
        tagger = alone(name, english)
        tagger.prepare()
        label = f"{name}, English by {english}" if english else name
        for keywords in (False, True):
            t = time.perf_counter()
            acc = accuracy(rows, rank(tagger, caps, keywords))
            ms = 1000 * (time.perf_counter() - t) / len(caps)
            cells = " | ".join(f"{acc[k][0]:.2f} / {acc[k][1]:.2f}" for k in (*LANGS, "all"))
            print(f"| {label} | {'+ keywords' if keywords else 'embedding'} | {cells} | {ms:.1f} |")


if __name__ == "__main__":
    main()
