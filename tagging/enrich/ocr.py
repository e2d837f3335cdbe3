"""On-screen text (OCR) of a few sampled frames with RapidOCR (PP-OCRv4 on ONNX Runtime).

``rapidocr-onnxruntime`` ships its detection, angle-classification and recognition models
inside the wheel, so nothing is downloaded at run time. It depends on ``opencv-python``,
which the project already uses, so installing it does not pull a second OpenCV build.

To keep OCR cheap (target: at most 0.3 s per video on two CPU cores) the reader:

* picks at most ``max_frames`` frames spread over the clip (bin centres, which avoids
  fade-in and fade-out frames at the very ends),
* skips flat frames (no text can be there) and frames nearly identical to one already
  picked (talking-head videos barely change),
* downscales to ``max_side`` and runs detection at that size (RapidOCR's default upsizes
  the short side to 736 px, which is 4x slower on a 640x360 frame),
* skips the 180-degree angle classifier by default (video captions are upright),
* runs detection first and re-uses the recognition of a text box that looks the same as
  one read in an earlier frame (a caption that stays on screen is recognised once),
* keeps one hit per distinct string across frames (the best-scoring one),
* runs ONNX Runtime on one thread by default: on two shared cores that was faster than
  two threads, and it leaves the other core to the rest of the pipeline.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tagging.errors import ExtractorError, MissingDependency
from tagging.language import detect_language
from tagging.runtime import cached_model, pick_device

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install rapidocr-onnxruntime"
_SAME_BOX_IOU = 0.6
_SAME_BOX_DIFF = 24.0  # 99th percentile of |grey difference| over the box: one changed character exceeds it


@dataclass(frozen=True)
class OcrConfig:
    """Settings of an :class:`OcrReader`.

    Attributes:
        max_frames: Most frames OCRed per video.
        max_side: Frames are downscaled so that their longer side is at most this many pixels.
        min_score: Recognition confidence below which a string is dropped.
        use_angle_cls: Run the 180-degree text orientation classifier (slower; rarely needed).
        dedupe_diff: Largest absolute difference (0-255) between 64x64 grey thumbnails under
            which two frames count as the same picture and only the first is OCRed. The max,
            not the mean, so that a caption changing one digit is not taken for a duplicate.
        flat_std: Frames whose grey standard deviation is below this are skipped as blank.
        device: ``"auto"`` (CUDA when ONNX Runtime has the CUDA provider), ``"cpu"`` or ``"cuda"``.
        threads: ONNX Runtime intra-op threads on CPU; 0 means its default (one per core).
    """

    max_frames: int = 2
    max_side: int = 640
    min_score: float = 0.5
    use_angle_cls: bool = False
    dedupe_diff: float = 12.0
    flat_std: float = 2.0
    device: str = "auto"
    threads: int = 1


@dataclass
class OcrHit:
    """One recognised string.

    Attributes:
        text: The recognised text.
        score: Recognition confidence in [0, 1].
        timestamp: Time in seconds of the frame it was read from.
        box: Axis-aligned ``(x0, y0, x1, y1)`` in pixels of the frame as it was passed in.
        language: ISO 639-1 code of the string (:func:`tagging.language.detect_language`),
            None when it has no letters (digits only).
    """

    text: str
    score: float
    timestamp: float
    box: tuple[float, float, float, float]
    language: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dict."""
        return asdict(self)


@dataclass
class _SeenBox:
    """A text box recognised in an earlier frame: where it was, that frame (grey), the result."""

    rect: tuple[int, int, int, int]
    grey: np.ndarray
    text: str
    score: float

    def matches(self, rect: tuple[int, int, int, int], grey: np.ndarray) -> bool:
        """True when ``grey`` shows the same pixels in about the same place as this box.

        Detector boxes jitter by a few pixels between frames, so the frames are compared over
        the union of both boxes, pixel for pixel, rather than the warped crops.
        """
        if grey.shape != self.grey.shape:
            return False
        ix = max(0, min(rect[2], self.rect[2]) - max(rect[0], self.rect[0]))
        iy = max(0, min(rect[3], self.rect[3]) - max(rect[1], self.rect[1]))
        area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
        inter = ix * iy
        if inter <= 0 or inter / (area(rect) + area(self.rect) - inter) < _SAME_BOX_IOU:
            return False
        x0, y0 = min(rect[0], self.rect[0]), min(rect[1], self.rect[1])
        x1, y1 = max(rect[2], self.rect[2]), max(rect[3], self.rect[3])
        diff = np.abs(grey[y0:y1, x0:x1].astype(np.int16) - self.grey[y0:y1, x0:x1].astype(np.int16))
        return diff.size > 0 and float(np.percentile(diff, 99)) < _SAME_BOX_DIFF


def _engine(config: OcrConfig) -> Any:
    """Return the process-wide RapidOCR engine for ``config``, creating it on first use."""
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:
        raise MissingDependency("ocr", f"rapidocr-onnxruntime is not installed: {INSTALL_HINT}") from exc
    cuda = pick_device(config.device, "onnxruntime") == "cuda"

    def load() -> Any:
        logger.info("loading RapidOCR (cuda=%s, det side %d)", cuda, config.max_side)
        return RapidOCR(
            text_score=0.0,  # filtered here with config.min_score
            use_cls=config.use_angle_cls,
            det_limit_type="max",
            det_limit_side_len=config.max_side,
            det_use_cuda=cuda,
            cls_use_cuda=cuda,
            rec_use_cuda=cuda,
            intra_op_num_threads=config.threads or -1,
            inter_op_num_threads=1,
        )

    return cached_model(("rapidocr", cuda, config.max_side, config.use_angle_cls, config.threads), load)


def _thumb(frame: np.ndarray) -> np.ndarray:
    import cv2

    grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)


def select_frames(frames: list[np.ndarray], config: OcrConfig) -> list[int]:
    """Pick the indices of at most ``config.max_frames`` distinct, non-blank frames.

    Candidates are the centres of ``max_frames`` equal bins over the clip; when one is blank
    or a near-duplicate, the other frames of its bin are tried in order of distance.

    Args:
        frames: RGB uint8 frames in time order.
        config: Reader settings.

    Returns:
        Indices into ``frames``, in time order.
    """
    n = len(frames)
    if n == 0 or config.max_frames <= 0:
        return []
    bins = min(config.max_frames, n)
    chosen: list[int] = []
    thumbs: list[np.ndarray] = []
    for b in range(bins):
        lo, hi = b * n // bins, (b + 1) * n // bins
        centre = (lo + hi - 1) / 2
        for idx in sorted(range(lo, hi), key=lambda i: abs(i - centre)):
            thumb = _thumb(frames[idx])
            if float(thumb.std()) < config.flat_std:
                continue
            if any(float(np.abs(thumb - t).max()) < config.dedupe_diff for t in thumbs):
                break  # this bin shows the same picture as an earlier one
            chosen.append(idx)
            thumbs.append(thumb)
            break
    return sorted(chosen)


def _normalise(text: str) -> str:
    """Dedupe key: case and spacing vary between reads of the same caption."""
    return re.sub(r"\s+", "", text).casefold()


class OcrReader:
    """Reads on-screen text from sampled video frames; the engine loads once per process.

    Args:
        config: Settings; the defaults target <= 0.3 s per video on two CPU cores.
    """

    def __init__(self, config: OcrConfig | None = None) -> None:
        self.config = config or OcrConfig()

    def load(self) -> None:
        """Create the OCR engine now instead of on the first call.

        Raises:
            MissingDependency: rapidocr-onnxruntime is not installed.
        """
        _engine(self.config)

    def read(self, frames: list[np.ndarray], timestamps: list[float]) -> list[OcrHit]:
        """OCR a few frames of one video.

        Args:
            frames: RGB uint8 frames of shape (H, W, 3) (grey (H, W) is accepted).
            timestamps: Time in seconds of each frame; same length as ``frames``.

        Returns:
            Distinct strings with their best score, in time then reading order;
            an empty list when no frame shows text.

        Raises:
            MissingDependency: rapidocr-onnxruntime is not installed.
            ExtractorError: The frames are malformed or the engine failed.
        """
        if len(frames) != len(timestamps):
            raise ExtractorError("ocr", f"{len(frames)} frames but {len(timestamps)} timestamps")
        for frame in frames:
            if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim not in (2, 3):
                raise ExtractorError("ocr", f"expected uint8 (H, W[, 3]) frames, got {getattr(frame, 'shape', frame)!r}")
        picked = select_frames(frames, self.config)
        if not picked:
            return []
        engine = _engine(self.config)
        seen: list[_SeenBox] = []
        best: dict[str, OcrHit] = {}
        for idx in picked:
            for hit in self._read_frame(engine, frames[idx], float(timestamps[idx]), seen):
                key = _normalise(hit.text)
                if key not in best or hit.score > best[key].score:
                    best[key] = hit
        return sorted(best.values(), key=lambda h: (h.timestamp, h.box[1], h.box[0]))

    def _read_frame(
        self, engine: Any, frame: np.ndarray, timestamp: float, seen: list[_SeenBox]
    ) -> list[OcrHit]:
        import cv2

        bgr = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR if frame.ndim == 2 else cv2.COLOR_RGB2BGR)
        scale = min(1.0, self.config.max_side / max(bgr.shape[:2]))
        if scale < 1.0:
            size = (max(1, round(bgr.shape[1] * scale)), max(1, round(bgr.shape[0] * scale)))
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        try:
            found = self._recognise(engine, bgr, seen)
        except Exception as exc:  # onnxruntime and cv2 raise many types
            raise ExtractorError("ocr", f"OCR failed: {exc}") from exc
        hits = []
        for points, text, score in found:
            text = re.sub(r"\s+", " ", str(text)).strip()
            if float(score) < self.config.min_score or not any(ch.isalnum() for ch in text):
                continue
            pts = np.asarray(points, dtype=np.float32) / scale
            box = (float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max()))
            lang = detect_language(text)
            hits.append(OcrHit(text=text, score=round(float(score), 4), timestamp=timestamp, box=box,
                               language=lang.code if lang is not None else None))
        return hits

    def _recognise(
        self, engine: Any, bgr: np.ndarray, seen: list[_SeenBox]
    ) -> list[tuple[Any, str, float]]:
        """Detect text boxes, then recognise only boxes unlike those in ``seen`` (updated)."""
        import cv2

        if not all(hasattr(engine, a) for a in ("text_det", "sorted_boxes", "get_crop_img_list", "text_rec")):
            result, _ = engine(bgr, use_cls=self.config.use_angle_cls)  # another RapidOCR version
            return [(p, t, s) for p, t, s in result or []]
        boxes, _ = engine.text_det(bgr)
        if boxes is None or len(boxes) == 0:
            return []
        boxes = engine.sorted_boxes(boxes)
        crops = engine.get_crop_img_list(bgr, boxes)
        texts: list[tuple[str, float] | None] = []
        grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        h, w = grey.shape
        todo: list[tuple[int, tuple[int, int, int, int]]] = []
        for i, box in enumerate(boxes):
            pts = np.asarray(box)
            rect = (
                max(0, int(pts[:, 0].min())),
                max(0, int(pts[:, 1].min())),
                min(w, int(np.ceil(pts[:, 0].max())) + 1),
                min(h, int(np.ceil(pts[:, 1].max())) + 1),
            )
            match = next((old for old in seen if old.matches(rect, grey)), None)
            texts.append((match.text, match.score) if match else None)
            if match is None:
                todo.append((i, rect))
        if todo:
            batch = [crops[i] for i, _ in todo]
            if self.config.use_angle_cls:
                batch, _, _ = engine.text_cls(batch)
            recognised, _ = engine.text_rec(batch, False)
            for (i, rect), res in zip(todo, recognised):
                texts[i] = (str(res[0]), float(res[1]))
                seen.append(_SeenBox(rect, grey, *texts[i]))
        return [(box, *res) for box, res in zip(boxes, texts) if res is not None]
