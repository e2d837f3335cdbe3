"""CB2CF: place content-only (cold) items in a collaborative-filtering space.

Public API::

    from cb2cf import CB2CF, CFSpace, Predictor, TrainConfig, train_cb2cf, train_space
"""

from __future__ import annotations

from cb2cf.errors import (
    CB2CFError,
    ContentError,
    FeatureMismatchError,
    InteractionLogError,
    ModelFileError,
    SpaceError,
    UnknownIdError,
)
from cb2cf.features import ViewSpec, load_features_npz, save_features_npz
from cb2cf.interactions import Interactions, read_log, to_matrix, validate_log
from cb2cf.model import CB2CF, check_views
from cb2cf.predictor import Predictor, Ranked
from cb2cf.space import CFSpace, SpaceConfig, import_space, train_space
from cb2cf.train import ItemSet, TrainConfig, train_cb2cf

__all__ = [
    "CB2CF", "CB2CFError", "CFSpace", "ContentError", "FeatureMismatchError", "InteractionLogError",
    "Interactions", "ItemSet", "ModelFileError", "Predictor", "Ranked", "SpaceConfig", "SpaceError",
    "TrainConfig", "UnknownIdError", "ViewSpec", "check_views", "import_space", "load_features_npz",
    "read_log", "save_features_npz", "to_matrix", "train_cb2cf", "train_space", "validate_log",
]
