"""What a video says and shows in words, and whether it is fit to distribute.

:class:`Enricher` runs, on already decoded media:

* speech recognition (faster-whisper), only when the VAD speech ratio says there is speech;
* OCR of on-screen text (RapidOCR) on a few distinct frames;
* the review gate (resolution, duration, loudness, silence, black / frozen / blurry frames) and,
  when enabled, the explicit-imagery policy screen (NudeNet).

Each part is optional and independent: a failing or missing model is recorded as that part's
error and the others, and tagging, still run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from tagging.enrich.ocr import OcrConfig, OcrHit, OcrReader
from tagging.enrich.review import PolicyScreen, ReviewConfig, ReviewResult, review
from tagging.enrich.speech import DEFAULT_MIN_SPEECH_RATIO, Transcriber, TranscriberConfig, Transcript, should_transcribe
from tagging.errors import MissingDependency, TaggingError
from tagging.media import DecodedMedia

logger = logging.getLogger(__name__)


@dataclass
class EnrichConfig:
    """Switches and settings of speech, OCR and review.

    Attributes:
        speech: Transcribe speech when the VAD finds enough of it.
        min_speech_ratio: Fraction of the audio the VAD must call speech before ASR runs.
        transcriber: faster-whisper settings (model dir / id, device, beam size, ...).
        ocr: Read on-screen text.
        ocr_config: RapidOCR settings.
        review: Run the review gate.
        review_config: Review thresholds.
        policy_screen: Run the NudeNet explicit-imagery screen ("off", "on", or "auto" = when installed).
        policy_frames: Frames the policy screen looks at (about 0.2 s each on a 2-core CPU).
    """

    speech: bool = True
    min_speech_ratio: float = DEFAULT_MIN_SPEECH_RATIO
    transcriber: TranscriberConfig = field(default_factory=TranscriberConfig)
    ocr: bool = True
    ocr_config: OcrConfig = field(default_factory=OcrConfig)
    review: bool = True
    review_config: ReviewConfig = field(default_factory=ReviewConfig)
    policy_screen: str = "off"
    policy_frames: int = 2


@dataclass
class Enrichment:
    """Outputs of :class:`Enricher` for one video (None where a part did not run)."""

    transcript: Transcript | None = None
    ocr: list[OcrHit] | None = None
    review: ReviewResult | None = None

    @property
    def transcript_text(self) -> str:
        """The transcript, or "" when there is none."""
        return self.transcript.text if self.transcript is not None else ""

    @property
    def ocr_text(self) -> str:
        """Distinct on-screen strings joined by " | ", or "" when none were read."""
        return " | ".join(h.text for h in self.ocr or [])


class Enricher:
    """Run speech recognition, OCR and the review gate on decoded media.

    Args:
        config: Which parts run and how.
    """

    def __init__(self, config: EnrichConfig | None = None) -> None:
        self.config = config or EnrichConfig()
        self.transcriber = Transcriber(self.config.transcriber)
        self.reader = OcrReader(self.config.ocr_config)
        self.screen = self._make_screen()

    def _make_screen(self) -> PolicyScreen | None:
        mode = self.config.policy_screen
        if mode == "off":
            return None
        screen = PolicyScreen(max_frames=self.config.policy_frames)
        try:
            screen.load()
        except MissingDependency:
            if mode == "on":
                raise
            logger.info("policy screen not installed; review runs without it")
            return None
        return screen

    def load_models(self) -> None:
        """Load the ASR and OCR models now (each is skipped if disabled or missing)."""
        for enabled, part in ((self.config.speech, self.transcriber), (self.config.ocr, self.reader)):
            if enabled:
                try:
                    part.load()
                except MissingDependency as exc:
                    logger.warning("%s", exc)

    def run(self, media: DecodedMedia, speech_ratio: float | None, timings: dict[str, float], errors: dict[str, str]) -> Enrichment:
        """Enrich one video; per-part failures go to ``errors`` and leave that part None.

        Args:
            media: The decoded video.
            speech_ratio: VAD speech ratio from the audio extractor (None without audio).
            timings: Stage timings to add to ("speech", "ocr", "review").
            errors: Per-part error messages to add to.

        Returns:
            The transcript, OCR hits and review result.
        """
        cfg = self.config
        out = Enrichment()
        if cfg.speech and media.audio is not None:
            out.transcript = self._timed("speech", timings, errors, lambda: self._transcribe(media, speech_ratio))
        if cfg.ocr and media.frames:
            out.ocr = self._timed("ocr", timings, errors, lambda: self.reader.read(media.frames, media.timestamps))
        if cfg.review:
            out.review = self._timed("review", timings, errors, lambda: review(media, cfg.review_config, self.screen))
        return out

    def _transcribe(self, media: DecodedMedia, speech_ratio: float | None) -> Transcript:
        duration = len(media.audio) / media.sample_rate
        if not should_transcribe(speech_ratio, self.config.min_speech_ratio):
            return Transcript.empty(duration_s=duration)
        return self.transcriber.transcribe(media.audio, media.sample_rate)

    @staticmethod
    def _timed(name: str, timings: dict[str, float], errors: dict[str, str], fn: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn()
        except TaggingError as exc:
            logger.warning("%s failed: %s", name, exc)
            errors[name] = f"{exc.error_class}: {exc.reason}"
            return None
        finally:
            timings[name] = time.perf_counter() - t
