"""Typed errors for the tagging package.

Every failure that a caller can act on is a subclass of :class:`TaggingError` and
names the file or id it concerns plus a human-readable reason, so a batch can
record it and move on. Errors of the cb2cf library (``cb2cf.errors.CB2CFError``) are
mapped into this hierarchy in one place, :mod:`tagging.coldstart`.
"""

from __future__ import annotations


class TaggingError(Exception):
    """Base class of every error this package raises on purpose.

    Args:
        source: The file path, URI or video id the error concerns.
        reason: A short human-readable reason.
    """

    def __init__(self, source: str, reason: str) -> None:
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")

    @property
    def error_class(self) -> str:
        """The class name, used as a stable key in failure records and metrics."""
        return type(self).__name__


class MediaError(TaggingError):
    """Something is wrong with a media file."""


class MediaNotFound(MediaError):
    """The file does not exist or is not a regular file."""


class VideoOpenFailure(MediaError):
    """The file is not a media container that the decoder can open (random bytes, empty file)."""


class CorruptMedia(MediaError):
    """The container opened but its data is truncated or corrupt."""


class NoDecodableStream(MediaError):
    """The container holds no audio or video stream that can be decoded."""


class LimitExceeded(MediaError):
    """The file is over a configured limit (size, duration, pixels, frame rate, frame count)."""


class DecodeTimeout(MediaError):
    """Decoding did not finish within the wall-clock limit."""


class DecoderCrash(MediaError):
    """The decoder process died (segfault, out of memory) while decoding."""


class InvalidVideoId(TaggingError):
    """A video id does not match the allowed pattern."""


class ExtractorError(TaggingError):
    """A feature extractor failed on one modality of one item."""


class MissingDependency(TaggingError):
    """An optional dependency or model is not installed.

    The reason says what to install.
    """


class ModelLoadError(TaggingError):
    """Model files are missing, truncated, not safetensors, or do not match the config."""


class CatalogError(TaggingError):
    """The LanceDB catalog could not be read or written."""


class TaxonomyError(TaggingError):
    """A taxonomy file is missing, malformed or has duplicate ids."""


class InvalidInteraction(TaggingError):
    """An interaction event is malformed (unknown event, bad weight, bad user id)."""


class SourceError(TaggingError):
    """A backfill source cannot be read (unknown kind, malformed manifest)."""


class UnknownUser(TaggingError):
    """A user id the CF space does not know."""


class PathNotAllowed(TaggingError):
    """A requested path resolves outside every configured root."""


class NotReady(TaggingError):
    """The service is still loading its models (or failed to)."""


class LabelsError(TaxonomyError):
    """A labels file or label map is malformed or uses a label that maps to no taxonomy id."""


class HeadMismatchError(ModelLoadError):
    """A tag head was trained for another taxonomy, feature size or set of extractors."""


class InvalidInterest(TaggingError):
    """A stated interest is refused: empty or over-long text, an unknown taxonomy tag, a bad share."""


class NotEligible(TaggingError):
    """A cold-start stage asked of a video that failed review, has no CF vector, or is in the wrong state."""
