"""Tests of tagging.enrich.ocr: rendered text is read, blank frames give nothing, frames are picked sparingly."""

from __future__ import annotations

import re
import sys

import cv2
import numpy as np
import pytest

from tagging.enrich.ocr import OcrConfig, OcrHit, OcrReader, select_frames
from tagging.errors import ExtractorError, MissingDependency

rapidocr = pytest.importorskip("rapidocr_onnxruntime", reason="OCR not installed: pip install rapidocr-onnxruntime")


def _canon(text: str) -> str:
    """Compare OCR output loosely: upper case, no spaces, O and 0 alike (PP-OCR mixes them)."""
    return re.sub(r"\s+", "", text.upper()).replace("0", "O")


def _frame(text: str, w: int = 640, h: int = 360, bg: tuple[int, int, int] = (30, 60, 120), x: int = 0) -> np.ndarray:
    frame = np.zeros((h, w, 3), np.uint8)
    frame[:] = bg
    cv2.circle(frame, ((40 + 23 * x) % w, h // 4), 25, (200, 40, 40), -1)  # content that moves
    cv2.putText(frame, text, (20, h * 2 // 3), cv2.FONT_HERSHEY_DUPLEX, w / 400, (255, 255, 255), 2, cv2.LINE_AA)
    return frame


@pytest.fixture(scope="module")
def reader() -> OcrReader:
    """One engine for the whole module."""
    ocr = OcrReader()
    ocr.load()
    return ocr


def test_reads_rendered_text(reader: OcrReader) -> None:
    hits = reader.read([_frame("HELLO WORLD 2026")], [1.5])
    assert hits, "no text found"
    assert "HELLOWORLD2O26" in "".join(_canon(h.text) for h in hits)
    hit = hits[0]
    assert isinstance(hit, OcrHit) and hit.timestamp == 1.5 and 0.5 <= hit.score <= 1.0
    x0, y0, x1, y1 = hit.box
    assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 360 and y0 < 240 < y1 + 20  # around the baseline
    assert hit.to_dict()["text"] == hit.text


def test_box_is_in_input_pixels_when_downscaled(reader: OcrReader) -> None:
    big = cv2.resize(_frame("HELLO WORLD 2026"), (1280, 720), interpolation=cv2.INTER_CUBIC)
    hits = reader.read([big], [0.0])
    assert hits and "HELLOWORLD" in _canon(hits[0].text)
    assert hits[0].box[2] > 640, "box was not scaled back to the 1280 px input"


def test_blank_and_plain_frames_give_nothing(reader: OcrReader) -> None:
    assert reader.read([np.full((360, 640, 3), 128, np.uint8)] * 5, [0, 1, 2, 3, 4]) == []
    assert reader.read([], []) == []
    shapes = np.zeros((360, 640, 3), np.uint8)
    cv2.circle(shapes, (320, 180), 100, (0, 200, 0), -1)
    assert reader.read([shapes], [0.0]) == []


def test_caption_across_frames_is_reported_once(reader: OcrReader) -> None:
    frames = [_frame("LEG DAY 5 SETS", w=320, h=180, x=i) for i in range(30)]
    hits = reader.read(frames, [i / 10 for i in range(30)])
    assert len(hits) == 1 and "LEGDAY5SETS" in _canon(hits[0].text)


def test_distinct_captions_are_all_kept() -> None:
    reader = OcrReader(OcrConfig(max_frames=3))  # one frame per caption
    frames = [_frame(f"STEP {i // 10 + 1}", w=320, h=180, x=i) for i in range(30)]
    texts = {_canon(h.text) for h in reader.read(frames, [i / 10 for i in range(30)])}
    assert {"STEP1", "STEP2", "STEP3"} <= texts


def test_select_frames_spreads_and_dedupes() -> None:
    cfg = OcrConfig(max_frames=3)
    moving = [_frame("A", x=i) for i in range(30)]
    assert select_frames(moving, cfg) == [4, 14, 24]  # bin centres
    still = [_frame("A")] * 30
    assert len(select_frames(still, cfg)) == 1  # the same picture is OCRed once
    blank = [np.zeros((90, 160, 3), np.uint8)] * 10
    assert select_frames(blank, cfg) == []
    assert select_frames(moving[:2], cfg) == [0, 1]


def test_bad_input_raises(reader: OcrReader) -> None:
    with pytest.raises(ExtractorError):
        reader.read([_frame("X")], [])
    with pytest.raises(ExtractorError):
        reader.read([np.random.default_rng(0).random((64, 64, 3))], [0.0])  # float frame


def test_missing_rapidocr_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)
    with pytest.raises(MissingDependency, match="pip install rapidocr-onnxruntime"):
        OcrReader(OcrConfig(max_side=321)).read([_frame("HELLO")], [0.0])  # a config not loaded yet
