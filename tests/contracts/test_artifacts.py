"""One save/load contract shared by every artifact the project writes.

Extractor config, CF space, CB2CF model and tag head: each saves to a directory with a
JSON record of what made it, loads back to an object that gives the same outputs on the
same input, and refuses a damaged directory with a typed error that names the path.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from cb2cf import CB2CF, CFSpace, ItemSet, ModelFileError, SpaceConfig, TrainConfig, ViewSpec, train_cb2cf, train_space
from cb2cf.interactions import Interactions
from tagging.errors import ModelLoadError
from tagging.extractors import ItemContent, get_extractor
from tagging.extractors.base import Extractor
from tagging.tags.heads import HeadConfig, TagHead, train_head

RNG = np.random.default_rng(7)
N_USERS, N_ITEMS = 40, 60
R = (RNG.random((N_USERS, N_ITEMS)) < 0.2).astype(np.float32)
USERS = np.array([f"u{i}" for i in range(N_USERS)])
ITEMS = np.array([f"i{i}" for i in range(N_ITEMS)])
CONTENT = RNG.normal(size=(N_ITEMS, 12)).astype(np.float32)
HEAD_X = RNG.normal(size=(80, 16)).astype(np.float32)
HEAD_Y = np.eye(3, dtype=np.int8)[np.argmax(HEAD_X[:, :3], axis=1)]
EXTRACTORS = {"frames": "fake-frames@1", "audio": "fake-audio@1", "text": "fake-text@1"}


@dataclass
class Artifact:
    """How to build, save, load and probe one artifact kind."""

    build: Callable[[], Any]
    save: Callable[[Any, Path], Any]
    load: Callable[[Path], Any]
    probe: Callable[[Any], np.ndarray]
    damage: str  # file to corrupt
    errors: tuple[type[Exception], ...]


def _space() -> CFSpace:
    return train_space(Interactions(USERS, ITEMS, sp.csr_matrix(R)), SpaceConfig(factors=4, iterations=3, num_threads=1),
                       space_id="contract")


_SPACE = _space()


def _cb2cf() -> CB2CF:
    items = ItemSet(ITEMS, {"a": CONTENT}, {}, sp.csr_matrix(R))
    cfg = TrainConfig(name="contract", tower_dim=8, hidden_dim=16, batch_size=32, max_epochs=2, patience=2, seed=0)
    model, _ = train_cb2cf(items, _SPACE, cfg, items, [ViewSpec("a", 12, "contract-a@1")])
    return model


def _head() -> TagHead:
    return train_head(HEAD_X, HEAD_Y, ["x", "y", "z"], "tax@1+abc", EXTRACTORS, {"frames": 1.0}, HeadConfig(seed=0))


def _extractor() -> Extractor:
    return get_extractor("text-minilm")


ARTIFACTS = {
    "extractor": Artifact(_extractor, lambda e, d: e.save(d), Extractor.load,
                          lambda e: e.extract(ItemContent(text="surfing big waves at dawn")).vector,
                          "config.json", (ModelLoadError,)),
    "cf-space": Artifact(lambda: _SPACE, lambda s, d: s.save(d), CFSpace.load,
                         lambda s: np.concatenate([s.user_vectors[:3].ravel(), s.item_vector("i5")]),
                         "space.safetensors", (ModelFileError,)),
    "cb2cf": Artifact(_cb2cf, lambda m, d: m.save(d), CB2CF.load, lambda m: m.predict({"a": CONTENT[:5]}),
                      "model.safetensors", (ModelFileError,)),
    "tag-head": Artifact(_head, lambda h, d: h.save(d), TagHead.load, lambda h: h.predict_proba(HEAD_X[:5]),
                         "weights.safetensors", (ModelLoadError,)),
}


def _json_records(d: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(d.rglob("*.json"))]


@pytest.mark.parametrize("kind", list(ARTIFACTS))
class TestArtifactContract:
    """Every artifact: round trip with the same outputs, provenance on disk, typed refusal of damage."""

    def test_round_trip_gives_the_same_outputs(self, kind: str, tmp_path: Path) -> None:
        art = ARTIFACTS[kind]
        obj = art.build()
        art.save(obj, tmp_path / kind)
        again = art.load(tmp_path / kind)
        np.testing.assert_allclose(art.probe(again), art.probe(obj), rtol=1e-5, atol=1e-6)

    def test_directory_records_what_made_it(self, kind: str, tmp_path: Path) -> None:
        art = ARTIFACTS[kind]
        art.save(art.build(), tmp_path / kind)
        records = _json_records(tmp_path / kind)
        assert records, f"{kind} wrote no JSON record"
        text = json.dumps(records)
        assert any(key in text for key in ('"libraries"', '"version"', '"extractor_id"')), text[:300]

    def test_damaged_directory_is_a_typed_error_naming_it(self, kind: str, tmp_path: Path) -> None:
        art = ARTIFACTS[kind]
        d = tmp_path / kind
        art.save(art.build(), d)
        target = next(d.rglob(art.damage), None)
        assert target is not None, f"{kind} has no {art.damage}: {sorted(p.name for p in d.rglob('*'))}"
        target.write_bytes(target.read_bytes()[: max(1, target.stat().st_size // 3)])
        with pytest.raises(art.errors) as info:
            art.load(d)
        assert str(d) in str(info.value) or d.name in str(info.value)

    def test_missing_directory_is_a_typed_error(self, kind: str, tmp_path: Path) -> None:
        with pytest.raises(ARTIFACTS[kind].errors):
            ARTIFACTS[kind].load(tmp_path / "missing")
