"""all-MiniLM-L6-v2 under ONNX Runtime: the English text model without torch at run time.

``text-minilm`` scores English captions, transcripts and on-screen text for the tagger
(docs/tagging-quality.md). Through sentence-transformers it imports torch and transformers
(several seconds of a cold start and a few hundred MiB resident). This module exports the
BERT encoder of the packaged weights to ONNX once into the cache
(``onnx/minilm-<sha256 of model.safetensors>.onnx``, with a ``.sha256`` next to it and a file
lock around the export; exporting needs torch and transformers, running does not) and runs it
with the ``tokenizers`` library (the same fast tokenizer sentence-transformers uses), mean
pooling over the attention mask and L2 normalisation, as the model's ``modules.json`` says.

sentence-transformers stays selectable (``TextExtractor(backend="torch")``) and is the
reference: ``tests/tagging/test_minilm_onnx.py`` checks cosine >= 0.9999 and the same tags.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from tagging.errors import ModelLoadError
from tagging.runtime import cache_dir, cached_model, export_once, file_sha256, onnx_session, require

logger = logging.getLogger(__name__)

OPSET = 17


def onnx_path(model_dir: str) -> Path:
    """Where the ONNX export of the model in ``model_dir`` lives in the cache."""
    digest = file_sha256(Path(model_dir) / "model.safetensors")[:16]
    return cache_dir() / "onnx" / f"minilm-{digest}.onnx"


def export_minilm(model_dir: str) -> Path:
    """Return the cached ONNX encoder of ``model_dir``, exporting it first when missing or damaged.

    Raises:
        MissingDependency: torch, transformers or onnx is missing (only when exporting).
        ModelLoadError: The export failed.
    """
    return export_once(onnx_path(model_dir), lambda tmp: _export(model_dir, tmp), "MiniLM")


def _export(model_dir: str, path: Path) -> None:
    """Write the ONNX encoder (last hidden state) of the model in ``model_dir`` to ``path``."""
    require("onnx", "onnx")
    require("transformers", "transformers")
    import torch
    from transformers import AutoModel

    bert = AutoModel.from_pretrained(model_dir).eval()

    class Hidden(torch.nn.Module):
        """The last hidden state, the one output the pooling reads."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    ids = torch.ones(2, 8, dtype=torch.long)
    axes = {0: "n", 1: "len"}
    with warnings.catch_warnings(), contextlib.redirect_stdout(None), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Hidden(), (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(path), dynamo=False,
            opset_version=OPSET, input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["hidden"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "hidden": axes},
        )


class MiniLMOnnx:
    """Tokenizer plus ONNX encoder plus mean pooling: ``encode(texts)`` -> (n, 384) unit rows.

    Args:
        model_dir: A sentence-transformers directory with ``tokenizer.json`` and ``model.safetensors``.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.

    Raises:
        MissingDependency: tokenizers or onnxruntime is missing.
        ModelLoadError: The directory lacks the files, or the export failed.
    """

    def __init__(self, model_dir: str, device: str = "auto") -> None:
        tokenizers = require("tokenizers", "tokenizers")
        folder = Path(model_dir)
        if not (folder / "tokenizer.json").is_file() or not (folder / "model.safetensors").is_file():
            raise ModelLoadError(model_dir, "no tokenizer.json or model.safetensors for the ONNX text model")
        max_len = 256
        bert_cfg = folder / "sentence_bert_config.json"
        if bert_cfg.is_file():
            max_len = int(json.loads(bert_cfg.read_text()).get("max_seq_length", max_len))
        self.tokenizer = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_len)
        self.tokenizer.no_padding()
        self.session = onnx_session(export_minilm(model_dir), device, threads=0, arena=False)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Unit-length sentence embeddings of ``texts`` (batches padded to their longest text)."""
        out = []
        for i in range(0, len(texts), batch_size):
            encs = self.tokenizer.encode_batch(texts[i : i + batch_size])
            width = max(len(e.ids) for e in encs)
            ids = np.zeros((len(encs), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            types = np.zeros_like(ids)
            for row, enc in enumerate(encs):
                ids[row, : len(enc.ids)] = enc.ids
                mask[row, : len(enc.ids)] = enc.attention_mask
                types[row, : len(enc.ids)] = enc.type_ids
            hidden = self.session.run(["hidden"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
            m = mask[..., None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            out.append(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12))
        return np.concatenate(out).astype(np.float32)


def load_minilm_onnx(model_dir: str, device: str) -> MiniLMOnnx:
    """The ONNX MiniLM for ``model_dir``, once per process."""
    return cached_model(("minilm-onnx", model_dir, device), lambda: MiniLMOnnx(model_dir, device))
