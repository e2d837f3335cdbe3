"""Helpers of the serving tests: fault-injecting decoders, a model-free pipeline, tiny CB2CF models, synthetic spaces.

Decode functions live here (a real module) so the ``spawn``-ed decode children can import them.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np

from tagging.media import DecodedMedia, MediaInfo
from tagging.serving.isolation import DecodeSettings, default_decode
from tagging.store.catalog import CatalogDims

FAKE_DIMS = CatalogDims(frames=8, audio=4, text=4, cf=4)


def fault_decode(path: str, settings: DecodeSettings) -> DecodedMedia:
    """Decode normally, except files named ``*hang*`` sleep forever, ``*crash*`` segfault, ``*oom*`` allocate."""
    name = Path(path).name
    if "hang" in name:
        time.sleep(3600)
    if "crash" in name:
        os.kill(os.getpid(), signal.SIGSEGV)
    if "oom" in name:
        _ = np.ones(1 << 40, np.uint8)  # 1 TiB: over any RLIMIT_AS
    return default_decode(path, settings)


def fake_decode(path: str, settings: DecodeSettings) -> DecodedMedia:
    """A decode that reads nothing but the file size (fast: for write-concurrency tests)."""
    info = MediaInfo(path=path, container="fake", size_bytes=os.path.getsize(path), duration_s=1.0,
                     has_video=True, has_audio=False, width=4, height=4, fps=1.0)
    return DecodedMedia(info, [np.zeros((4, 4, 3), np.uint8)], [0.0], None, settings.sample_rate)


class _FakeResult:
    def __init__(self, video_id: str, caption: Any, path: str) -> None:
        self.video_id, self.caption, self.path = video_id, caption, path

    def to_row(self) -> dict[str, Any]:
        from datetime import datetime

        rng = np.random.default_rng(abs(hash(self.video_id)) % 2**32)
        v = rng.normal(size=FAKE_DIMS.fused)
        return {"video_id": self.video_id, "source_uri": self.path, "caption": str(self.caption or ""),
                "fused_vector": (v / np.linalg.norm(v)).tolist(), "tags": ["music"], "tag_scores": [0.5],
                "cf_vector": [0.1, 0.2, 0.3, 0.4], "cf_model_version": "fake@1",
                "extractors_json": '{"frames": "fake"}', "ingested_at": datetime.now(UTC)}


class FakePipeline:
    """Stands in for ``Pipeline`` where only the write path matters (no models)."""

    def __init__(self) -> None:
        from tagging.pipeline import PipelineConfig

        self.config = PipelineConfig()

    def dims(self) -> CatalogDims:
        return FAKE_DIMS

    def warmup(self) -> float:
        return 0.0

    def analyze_media(self, media: DecodedMedia, video_id: str, caption: Any = None, metadata: Any = None,
                      timings: Any = None) -> _FakeResult:
        return _FakeResult(video_id, caption, media.info.path)


def make_cb2cf(path: Path, dims: CatalogDims, seed: int, cf_dim: int = 8, space: Any = None,
               extractors: dict[str, str] | None = None) -> Path:
    """Save an untrained (random) CB2CF model for the pipeline's views; its version differs per seed."""
    import torch

    from cb2cf.model import CB2CF

    torch.manual_seed(seed)
    model = CB2CF({"frames": dims.frames, "audio": dims.audio, "text": dims.text}, cf_dim, tower_dim=16, hidden_dim=16)
    ext = extractors or {}
    model.manifest = {"name": f"test{seed}", "views": [
        {"name": n, "dim": d, "extractor_id": ext.get(n, "unknown")} for n, d in model.views.items()]}
    if space is not None:
        model.manifest["cf_space"] = {"id": space.space_id, "version": space.version}
    return model.save(path)


def planted_space(n_clusters: int = 4, per_cluster: int = 50, dim: int = 8, seed: int = 0) -> Any:
    """A CF space whose users form ``n_clusters`` tight clusters along orthogonal axes.

    User ``c{c}_u{i}`` belongs to cluster ``c`` (vector ~ e_c + noise), and the users of a
    cluster are ordered by how well they match ``e_c`` (``i = 0`` is the best).
    """
    from cb2cf.space import CFSpace

    rng = np.random.default_rng(seed)
    ids, vecs = [], []
    for c in range(n_clusters):
        for i in range(per_cluster):
            v = np.zeros(dim)
            v[c] = 1.0 - 0.004 * i  # strictly decreasing match within the cluster
            v += rng.normal(scale=0.02, size=dim) * (np.arange(dim) != c)
            ids.append(f"c{c}_u{i}")
            vecs.append(v)
    items = np.eye(dim)[:n_clusters]
    return CFSpace("planted", "v1", np.array(ids), np.array(vecs), np.array([f"i{c}" for c in range(n_clusters)]), items)


def hook_worker(db: str, jobs: list[tuple[str, str]], barrier: Any, out: Any) -> None:
    """One upload-service process: a hook with the fake pipeline, ingesting ``(path, video_id)`` jobs at once."""
    from concurrent.futures import ThreadPoolExecutor

    from tagging.serving.hook import HookConfig, UploadHook
    from tagging.store.writer import WriterConfig

    cfg = HookConfig(db=db, maintenance_interval_s=None, writer=WriterConfig(max_rows=8, max_delay_ms=50))
    with UploadHook(cfg, pipeline=FakePipeline(), decode_fn=fake_decode) as hook:
        hook.catalog  # noqa: B018
        hook.pool.decode(jobs[0][0])  # start the decode child before the barrier
        barrier.wait()
        with ThreadPoolExecutor(4) as ex:
            rows = list(ex.map(lambda j: hook(j[0], j[1], caption=f"pid{os.getpid()}")["video_id"], jobs))
    out.put(rows)
