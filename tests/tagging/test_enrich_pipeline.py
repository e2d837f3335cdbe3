"""Speech, on-screen text and the review gate, end to end through the pipeline and the catalog."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import cv2
import media_factory as mf
import numpy as np
import pytest

from tagging.language import LANGUAGES
from tagging.pipeline import Pipeline
from tagging.store.catalog import Catalog

SENTENCE = "Today I will show you how to cook pasta in the kitchen with fresh tomatoes."


def text_frames(text: str, n: int = 20, size: tuple[int, int] = (480, 360)) -> list[np.ndarray]:
    frames = []
    for i in range(n):
        img = np.full((size[1], size[0], 3), 235, np.uint8)
        img[:, :, 1] = 200 + i  # a little motion so frames are not frozen
        cv2.putText(img, text, (20, size[1] // 2), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (10, 10, 10), 4, cv2.LINE_AA)
        frames.append(img)
    return frames


@pytest.fixture(scope="module")
def speech_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.skip("espeak-ng is not on PATH (apt-get install -y espeak-ng)")
    import librosa
    import soundfile as sf

    d = tmp_path_factory.mktemp("speech-clip")
    wav = d / "s.wav"
    subprocess.run([exe, "-v", "en-us", "-s", "150", "-w", str(wav), SENTENCE], check=True, timeout=30)
    audio, sr = sf.read(wav, dtype="float32")
    audio = librosa.resample(audio, orig_sr=sr, target_sr=16000)
    seconds = len(audio) / 16000
    return mf.make_clip(d / "cooking_talk.mp4", text_frames("PASTA RECIPE", n=int(seconds * 10)), fps=10, audio=audio)


def test_transcript_and_ocr_feed_text_view_tags_and_row(pipeline: Pipeline, speech_clip: Path, tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "db", dims=pipeline.dims())
    report = pipeline.ingest([{"path": speech_clip, "video_id": "talk1"}], cat)  # no caption at all
    assert not report.failures
    r = report.results[0]
    words = r.enrichment.transcript_text.lower()
    assert sum(w in words for w in ("cook", "pasta", "kitchen", "tomatoes")) >= 2, words
    assert r.enrichment.transcript.language == "en"
    assert "PASTA" in r.enrichment.ocr_text.upper().replace("0", "O")
    assert r.features["text"].present  # transcript + OCR make a text view without a caption
    assert r.tags[0].id == "food"
    ev = r.tags[0].evidence["text"]
    assert ev["source"] in {"transcript", "ocr"} and ("segments" in ev or "timestamps" in ev)
    row = cat.get("talk1")
    assert row["transcript"] and json.loads(row["transcript_json"])["language"] == "en"
    assert "PASTA" in row["ocr_text"].upper().replace("0", "O")
    assert all(h["language"] in LANGUAGES for h in json.loads(row["ocr_json"]))  # each string's language recorded
    review = json.loads(row["review_json"])
    assert row["review_passed"] is review["passed"]
    assert review["flags"]["low_resolution"] is False and review["flags"]["silent"] is False


def test_review_flags_stored_and_no_speech_skips_asr(pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_asr(*_a: object, **_k: object) -> None:
        raise AssertionError("ASR must not run on audio without speech")

    monkeypatch.setattr(pipeline.enricher.transcriber, "transcribe", no_asr)
    black = [np.zeros((120, 160, 3), np.uint8) for _ in range(10)]
    clip = mf.make_clip(tmp_path / "black.mp4", black, fps=10, audio=np.zeros(16000, np.float32))
    r = pipeline.analyze(clip)
    review = r.enrichment.review
    assert not review.passed and {"black_frames", "low_resolution", "too_short"} <= set(review.blocking)
    assert review.flags["silent"] is True
    assert r.enrichment.transcript is not None and r.enrichment.transcript.text == ""
    assert r.enrichment.ocr == []


def test_enrichment_failure_is_isolated(pipeline: Pipeline, clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from tagging.errors import ExtractorError

    def boom(*_a: object, **_k: object) -> None:
        raise ExtractorError("ocr", "simulated OCR failure")

    monkeypatch.setattr(pipeline.enricher.reader, "read", boom)
    r = pipeline.analyze(clips["good"], caption="guitar song")
    assert "ocr" in r.errors and r.enrichment.ocr is None
    assert r.tags and r.tags[0].id == "music"


def test_other_language_is_transcribed_with_its_language(pipeline: Pipeline, tmp_path: Path) -> None:
    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.skip("espeak-ng is not on PATH (apt-get install -y espeak-ng)")
    import librosa
    import soundfile as sf

    wav = tmp_path / "es.wav"
    text = "Hoy vamos a cocinar una paella con arroz, pollo y verduras frescas."
    subprocess.run([exe, "-v", "es", "-s", "140", "-w", str(wav), text], check=True, timeout=30)
    audio, sr = sf.read(wav, dtype="float32")
    audio = librosa.resample(audio, orig_sr=sr, target_sr=16000)
    clip = mf.make_clip(tmp_path / "es.mp4", text_frames("", n=int(len(audio) / 16000 * 10)), fps=10, audio=audio)
    r = pipeline.analyze(clip)
    transcript = r.enrichment.transcript
    assert transcript.text and transcript.language == "es", transcript
    assert r.features["text"].present and r.tags
    food = [t for t in r.tags[:3] if t.id == "food"]  # the multilingual text model reads the Spanish transcript
    assert food, [(t.id, round(t.score, 3)) for t in r.tags]
    ev = food[0].evidence["text"]
    assert ev["source"] == "transcript" and ev["language"] == "es" and ev["snippet"] == transcript.text[:160]


def test_corrupt_audio_track_keeps_the_other_modalities(pipeline: Pipeline, tmp_path: Path) -> None:
    clip = mf.make_corrupt_audio_video(tmp_path / "bad_audio.mp4", seconds=2.0)
    r = pipeline.analyze(clip, caption="guitar song")
    assert "audio" in r.errors and not r.features["audio"].present
    assert r.features["frames"].present and r.tags and r.tags[0].id == "music"
    assert r.to_row()["audio_present"] is False
