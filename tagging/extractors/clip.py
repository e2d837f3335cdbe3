"""Frame features with a CLIP image-text model through transformers.

For users who can reach CLIP weights (a hub id such as ``openai/clip-vit-base-patch32``
already in the local cache, or a local directory). The frame vector lives in CLIP's
joint space, so the tagger can score categories zero-shot against their prompts
with :meth:`ClipExtractor.embed_texts`.
"""

from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np

from tagging.errors import ExtractorError, ModelLoadError
from tagging.extractors.base import Extractor, Features, FrameCues, ItemContent, l2_normalize, register
from tagging.runtime import cached_model, pick_device, require

CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32) * 255
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32) * 255


def load_clip(model: str, device: str) -> tuple[Any, Any]:
    """Load a CLIPModel and its tokenizer once per process (offline by default).

    Raises:
        MissingDependency: transformers is not installed.
        ModelLoadError: The model cannot be loaded from ``model``.
    """
    tf = require("transformers", "transformers")

    def load() -> tuple[Any, Any]:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            clip = tf.CLIPModel.from_pretrained(model).eval().to(device)
            tokenizer = tf.AutoTokenizer.from_pretrained(model)
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(model, f"cannot load CLIP model (set HF_HUB_OFFLINE=0 to download): {exc}") from exc
        return clip, tokenizer

    return cached_model(("clip", model, device), load)


@register("clip")
class ClipExtractor(Extractor):
    """CLIP image embeddings of sampled frames, averaged and L2-normalised.

    Args:
        model: Hub id or local directory of a CLIP checkpoint.
        device: "auto", "cpu" or "cuda".
        batch_size: Frames per forward pass.
    """

    modality = "frames"
    version = "1"
    config_keys = ["model", "device", "batch_size"]
    libraries = ("transformers", "torch", "opencv-python")

    def __init__(self, model: str = "openai/clip-vit-base-patch32", device: str = "auto", batch_size: int = 16) -> None:
        self.model = model
        self.device = device
        self.batch_size = batch_size

    def _loaded(self) -> tuple[Any, Any, str]:
        device = pick_device(self.device)
        clip, tokenizer = load_clip(self.model, device)
        return clip, tokenizer, device

    @property
    def dim(self) -> int:
        return int(self._loaded()[0].config.projection_dim)

    def preprocess(self, frames: list[np.ndarray]) -> np.ndarray:
        """Resize (short side), centre-crop and normalise frames to NCHW float32."""
        side = int(self._loaded()[0].config.vision_config.image_size)
        batch = []
        for f in frames:
            h, w = f.shape[:2]
            scale = side / min(h, w)
            img = cv2.resize(f, (max(side, round(w * scale)), max(side, round(h * scale))), interpolation=cv2.INTER_AREA)
            top, left = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
            img = img[top : top + side, left : left + side].astype(np.float32)
            batch.append((img - CLIP_MEAN) / CLIP_STD)
        return np.ascontiguousarray(np.stack(batch).transpose(0, 3, 1, 2))

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Return projected, L2-normalised image embeddings (N, dim)."""
        import torch

        clip, _, device = self._loaded()
        outs = []
        with torch.inference_mode():
            for i in range(0, len(batch), self.batch_size):
                x = torch.from_numpy(batch[i : i + self.batch_size]).to(device)
                emb = clip.get_image_features(pixel_values=x)
                emb = getattr(emb, "pooler_output", emb)
                outs.append(emb.float().cpu().numpy())
        return l2_normalize(np.concatenate(outs))

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Embed prompts into CLIP's joint space (L2-normalised rows).

        Raises:
            ExtractorError: The text tower failed.
        """
        import torch

        clip, tokenizer, device = self._loaded()
        max_len = int(clip.config.text_config.max_position_embeddings)
        try:
            tok = tokenizer(texts, padding=True, truncation=True, max_length=max_len, return_tensors="pt").to(device)
            with torch.inference_mode():
                emb = clip.get_text_features(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"])
            emb = getattr(emb, "pooler_output", emb)
        except Exception as exc:  # noqa: BLE001
            raise ExtractorError(self.model, f"CLIP text tower failed: {exc}") from exc
        return l2_normalize(emb.float().cpu().numpy())

    def extract(self, item: ItemContent) -> Features:
        if not item.has("frames"):
            return self.missing()
        try:
            per_frame = self.forward(self.preprocess(item.frames))
        except ModelLoadError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ExtractorError(self.model, f"CLIP image tower failed: {exc}") from exc
        vec = l2_normalize(per_frame.mean(axis=0))
        return Features(self.extractor_id, self.modality, vec, FrameCues(frame_embeddings=per_frame, timestamps=list(item.timestamps)))
