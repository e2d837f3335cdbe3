"""cb2cf is a library of its own: importing it (and its benchmark) loads nothing from tagging."""

from __future__ import annotations

import subprocess
import sys


def test_import_cb2cf_loads_no_tagging_module() -> None:
    code = ("import sys, cb2cf, cb2cf.audience, cb2cf.foldin, cb2cf.bench.benchmark, cb2cf.cli; "
            "print(sorted(m for m in sys.modules if m == 'tagging' or m.startswith('tagging.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_benchmark_text_model_is_found_by_entry_point() -> None:
    from cb2cf.bench.embed import load_text_embedder

    embedder = load_text_embedder("text-minilm")
    vecs = embedder.embed_texts(["a dog on the beach", "cooking pasta"])
    assert vecs.shape[0] == 2 and embedder.extractor_id.startswith("text-minilm@")
