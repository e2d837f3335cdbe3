"""Typed errors for the cb2cf package.

Every failure a caller can act on is a subclass of :class:`CB2CFError`. Bad input
(interaction logs, content tables, feature dicts) raises a ``ValueError`` subclass;
bad model or space files raise an ``OSError`` subclass, so generic handlers keep
working.
"""

from __future__ import annotations


class CB2CFError(Exception):
    """Base class of every error this package raises on purpose."""


class InteractionLogError(CB2CFError, ValueError):
    """The interaction log is malformed: unknown ids, duplicates, bad weights, empty ids."""


class ContentError(CB2CFError, ValueError):
    """A content table or feature dict is malformed (missing items, NaNs, wrong shapes)."""


class FeatureMismatchError(CB2CFError, ValueError):
    """The features given do not match the views/dims recorded in a model's manifest."""


class UnknownIdError(CB2CFError, KeyError):
    """A user or item id is not part of the CF space."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable.
        return str(self.args[0]) if self.args else ""


class ModelFileError(CB2CFError, OSError):
    """A model or space directory is missing files, truncated, or not safetensors/JSON."""


class SpaceError(CB2CFError, ValueError):
    """A CF space is inconsistent (ids vs vectors, dims, non-finite values)."""


class ExposureError(CB2CFError, ValueError):
    """A cold-start exposure request is refused (see :mod:`cb2cf.exposure`)."""


class LadderConfigError(ExposureError):
    """An exposure ladder that does not grow, or shares outside [0, 1]."""


class NotEligibleError(ExposureError):
    """Stages asked of a video that did not pass the review gate, or one in the wrong state."""


class TrainingError(CB2CFError, RuntimeError):
    """Training could not produce a usable model: the loss diverged (NaN/inf), or the data is too small to validate."""
