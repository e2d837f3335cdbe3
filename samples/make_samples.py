"""Generate the synthetic sample clips in ``samples/`` and their captions.

The clips stand in for user uploads in demos and smoke tests
(``tagging ingest samples/``). Each is a few seconds of 320x240 H.264 video with
an AAC mono track, drawn and synthesised with numpy/OpenCV so that the picture
and the sound roughly match what the caption claims:

* ``ocean_waves.mp4``  - blue rolling waves over sand, filtered surf noise.
* ``drum_beat.mp4``    - shapes flashing on every beat, kick + hi-hat at 120 bpm.
* ``sunset_talk.mp4``  - a setting sun behind a talking silhouette, a speech-like voice.
* ``cooking_demo.mp4`` - vegetables dropping into a pan on a wooden counter, sizzle and chops.

``captions.json`` maps each file name to ``{"title", "description", "hashtags"}``.

Regenerate (deterministic: fixed seeds, same bytes for the same PyAV/FFmpeg build)::

    . .venv/bin/activate
    python samples/make_samples.py            # writes into samples/
    python samples/make_samples.py /tmp/out   # or into another folder

Only PyAV (libx264 + aac encoders, bundled in its wheels), numpy and OpenCV are needed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

WIDTH, HEIGHT = 320, 240
FPS = 24
SAMPLE_RATE = 22050
SEED = 20240601

CAPTIONS: dict[str, dict[str, object]] = {
    "ocean_waves.mp4": {
        "title": "Relaxing ocean waves",
        "description": "Relaxing ocean waves rolling onto the beach. Close your eyes and listen to the surf.",
        "hashtags": ["ocean", "waves", "beach", "nature", "relax", "asmr"],
    },
    "drum_beat.mp4": {
        "title": "120 bpm drum groove",
        "description": "Quick drum beat at 120 bpm - kick and hi-hat loop for your next track.",
        "hashtags": ["drums", "beat", "music", "drummer", "producer", "groove"],
    },
    "sunset_talk.mp4": {
        "title": "Sunset thoughts",
        "description": "Talking about my day while the sun goes down. Golden hour vibes.",
        "hashtags": ["sunset", "goldenhour", "vlog", "storytime", "talk"],
    },
    "cooking_demo.mp4": {
        "title": "Quick veggie stir fry",
        "description": "Easy vegetable stir fry in one pan: chop, sizzle, done in 10 minutes.",
        "hashtags": ["cooking", "recipe", "food", "stirfry", "vegetarian", "easyrecipes"],
    },
}


# ----------------------------------------------------------------------------- sound helpers


def _envelope(n: int, attack: float, decay: float) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    return np.minimum(t / max(attack, 1e-4), 1.0) * np.exp(-t / decay)


def _lowpass(x: np.ndarray, alpha: float) -> np.ndarray:
    """One-pole low-pass filter (alpha in (0, 1]: smaller is darker)."""
    y = np.empty_like(x)
    acc = 0.0
    for i, v in enumerate(x):
        acc += alpha * (v - acc)
        y[i] = acc
    return y


def _normalise(x: np.ndarray, peak: float = 0.8) -> np.ndarray:
    return (x * (peak / max(1e-9, float(np.abs(x).max())))).astype(np.float32)


# ----------------------------------------------------------------------------- clips


def ocean_waves(rng: np.random.Generator, seconds: float) -> tuple[Callable[[int], np.ndarray], np.ndarray]:
    """Blue rolling waves over a sand strip; surf noise swelling every ~2.5 s."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)

    def frame(i: int) -> np.ndarray:
        t = i / FPS
        shore = 190 + 12 * np.sin(2 * np.pi * t / 2.5)
        wave = 0.5 + 0.5 * np.sin(xs / 18.0 + ys / 9.0 - 2 * np.pi * t * 0.6)
        img = np.zeros((HEIGHT, WIDTH, 3), np.float32)
        img[..., 0] = 20 + 40 * wave  # R
        img[..., 1] = 80 + 60 * wave  # G
        img[..., 2] = 150 + 90 * wave  # B
        img[:60] = (135, 190, 235)  # sky
        foam = np.abs(ys - shore) < 4
        img[foam] = (235, 240, 245)
        img[ys > shore + 4] = (210, 185, 130)  # sand
        return img.clip(0, 255).astype(np.uint8)

    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    surf = _lowpass(rng.normal(0, 1, n), 0.08) * (0.35 + 0.65 * np.sin(np.pi * t / 2.5) ** 2)
    return frame, _normalise(surf, 0.6)


def drum_beat(rng: np.random.Generator, seconds: float) -> tuple[Callable[[int], np.ndarray], np.ndarray]:
    """Shapes flashing on each beat at 120 bpm; kick on beats, hi-hat on off-beats."""
    beat = 0.5
    colours = [(255, 60, 60), (60, 200, 255), (255, 210, 40), (160, 80, 255)]

    def frame(i: int) -> np.ndarray:
        t = i / FPS
        k, phase = divmod(t, beat)
        flash = np.exp(-phase / 0.12)
        img = np.full((HEIGHT, WIDTH, 3), 15, np.uint8)
        colour = tuple(int(c * (0.3 + 0.7 * flash)) for c in colours[int(k) % 4])
        radius = int(40 + 45 * flash)
        if int(k) % 2 == 0:
            cv2.circle(img, (WIDTH // 2, HEIGHT // 2), radius, colour, -1, cv2.LINE_AA)
        else:
            top_left = (WIDTH // 2 - radius, HEIGHT // 2 - radius)
            cv2.rectangle(img, top_left, (WIDTH // 2 + radius, HEIGHT // 2 + radius), colour, -1)
        for j in range(8):  # equaliser bars
            h = int(20 + 60 * flash * (0.5 + 0.5 * np.sin(j * 1.7 + k)))
            cv2.rectangle(img, (10 + j * 38, HEIGHT - 5 - h), (36 + j * 38, HEIGHT - 5), (80, 255, 120), -1)
        return img

    n = int(seconds * SAMPLE_RATE)
    out = np.zeros(n)
    kick_n = int(0.25 * SAMPLE_RATE)
    tk = np.arange(kick_n) / SAMPLE_RATE
    kick = np.sin(2 * np.pi * (50 * tk + 60 * 0.04 * (1 - np.exp(-tk / 0.04)))) * _envelope(kick_n, 0.002, 0.09)
    hat_n = int(0.06 * SAMPLE_RATE)
    for k in range(int(seconds / beat)):
        start = int(k * beat * SAMPLE_RATE)
        end = min(n, start + kick_n)
        out[start:end] += kick[: end - start]
        off = start + int(beat / 2 * SAMPLE_RATE)
        if off + hat_n <= n:
            noise = rng.normal(0, 1, hat_n)
            hat = (noise - _lowpass(noise, 0.3)) * _envelope(hat_n, 0.001, 0.015)
            out[off : off + hat_n] += 0.5 * hat
    return frame, _normalise(out, 0.85)


def sunset_talk(rng: np.random.Generator, seconds: float) -> tuple[Callable[[int], np.ndarray], np.ndarray]:
    """An orange-purple sky, a sinking sun and a silhouette; a voice-like buzz in syllables."""
    ys = np.linspace(0, 1, HEIGHT, dtype=np.float32)[:, None]
    sky = np.zeros((HEIGHT, WIDTH, 3), np.float32)
    sky[..., 0] = 255 - 60 * ys
    sky[..., 1] = 150 - 90 * ys
    sky[..., 2] = 60 + 80 * ys
    syllables = rng.uniform(0.12, 0.25, 64)

    def frame(i: int) -> np.ndarray:
        t = i / FPS
        img = sky.copy().clip(0, 255).astype(np.uint8)
        sun_y = int(110 + 40 * t / seconds)
        cv2.circle(img, (220, sun_y), 34, (255, 220, 120), -1, cv2.LINE_AA)
        cv2.rectangle(img, (0, 175), (WIDTH, HEIGHT), (60, 30, 50), -1)  # horizon / sea
        mouth = int(3 + 5 * abs(np.sin(2 * np.pi * 4 * t)))
        cv2.ellipse(img, (110, 235), (70, 60), 0, 180, 360, (25, 15, 25), -1)  # shoulders
        cv2.circle(img, (110, 140), 38, (25, 15, 25), -1, cv2.LINE_AA)  # head
        cv2.ellipse(img, (128, 155), (6, mouth), 0, 0, 360, (70, 40, 50), -1)
        return img

    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    pitch = 140 + 25 * np.sin(2 * np.pi * 0.7 * t) + 10 * np.sin(2 * np.pi * 3.1 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))  # buzzy glottal source
    formant = 0.6 + 0.4 * np.sin(2 * np.pi * 1.3 * t)
    voice = _lowpass(voice * formant, 0.25)
    gate = np.zeros(n)
    pos, k = 0.05, 0
    while pos < seconds:  # syllables with short gaps, a longer pause every 5
        length = syllables[k % len(syllables)]
        a, b = int(pos * SAMPLE_RATE), min(n, int((pos + length) * SAMPLE_RATE))
        gate[a:b] = np.hanning(max(b - a, 2))[: b - a]
        pos += length + (0.35 if k % 5 == 4 else 0.06)
        k += 1
    return frame, _normalise(voice * gate + 0.01 * rng.normal(0, 1, n), 0.7)


def cooking_demo(rng: np.random.Generator, seconds: float) -> tuple[Callable[[int], np.ndarray], np.ndarray]:
    """A pan on a wooden counter, vegetables dropping in; sizzle with pops and knife chops."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    wood = np.zeros((HEIGHT, WIDTH, 3), np.float32)
    grain = 0.5 + 0.5 * np.sin(ys / 6.0 + 3 * np.sin(xs / 40.0))
    wood[..., 0], wood[..., 1], wood[..., 2] = 150 + 40 * grain, 95 + 30 * grain, 50 + 15 * grain
    wood = wood.astype(np.uint8)
    veg_colours = [(60, 170, 60), (220, 40, 30), (250, 150, 30), (240, 220, 80)]
    pieces = [
        (rng.uniform(0, seconds * 0.8), rng.uniform(-45, 45), rng.uniform(-45, 45), int(rng.integers(0, 4)))
        for _ in range(14)
    ]

    def frame(i: int) -> np.ndarray:
        t = i / FPS
        img = wood.copy()
        centre = (160 + int(4 * np.sin(2 * np.pi * 1.5 * t)), 125)
        cv2.rectangle(img, (centre[0] + 85, centre[1] - 8), (315, centre[1] + 8), (30, 30, 30), -1)  # handle
        cv2.circle(img, centre, 92, (45, 45, 50), -1, cv2.LINE_AA)
        cv2.circle(img, centre, 80, (70, 70, 78), -1, cv2.LINE_AA)
        for t0, dx, dy, c in pieces:
            if t >= t0:
                fall = max(0.0, 1 - (t - t0) / 0.3)
                pos = (centre[0] + int(dx), centre[1] + int(dy - 120 * fall))
                cv2.circle(img, pos, 9, veg_colours[c], -1, cv2.LINE_AA)
        return img

    n = int(seconds * SAMPLE_RATE)
    noise = rng.normal(0, 1, n)
    sizzle = (noise - _lowpass(noise, 0.5)) * 0.25
    pops = rng.random(n) < 40 / SAMPLE_RATE
    sizzle[pops] += rng.uniform(-1, 1, int(pops.sum()))
    chop_n = int(0.08 * SAMPLE_RATE)
    tc = np.arange(chop_n) / SAMPLE_RATE
    chop = np.sin(2 * np.pi * 900 * tc) * _envelope(chop_n, 0.001, 0.012)
    chop += rng.normal(0, 0.3, chop_n) * _envelope(chop_n, 0.001, 0.006)
    for k in range(int(seconds / 0.35)):
        start = int((0.2 + k * 0.35) * SAMPLE_RATE)
        if start + chop_n <= n and k % 4 != 3:
            sizzle[start : start + chop_n] += 1.5 * chop
    return frame, _normalise(sizzle, 0.7)


CLIPS: dict[str, tuple[Callable, float]] = {
    "ocean_waves.mp4": (ocean_waves, 5.0),
    "drum_beat.mp4": (drum_beat, 4.0),
    "sunset_talk.mp4": (sunset_talk, 5.0),
    "cooking_demo.mp4": (cooking_demo, 5.0),
}


# ----------------------------------------------------------------------------- writing


def write_clip(path: Path, draw: Callable[[int], np.ndarray], audio: np.ndarray, seconds: float) -> None:
    """Encode frames from ``draw`` and mono ``audio`` into an H.264/AAC mp4 (moov at the front)."""
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        container.metadata["title"] = CAPTIONS[path.name]["title"]
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.codec_context.gop_size = FPS
        video.options = {"preset": "medium", "crf": "30", "threads": "1"}
        sound = container.add_stream("aac", rate=SAMPLE_RATE)
        sound.layout = "mono"
        sound.bit_rate = 48000
        for i in range(int(round(seconds * FPS))):
            frame = av.VideoFrame.from_ndarray(draw(i), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        for start in range(0, len(audio), 1024):
            frame = av.AudioFrame.from_ndarray(audio[None, start : start + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, start, Fraction(1, SAMPLE_RATE)
            for packet in sound.encode(frame):
                container.mux(packet)
        for packet in sound.encode(None):
            container.mux(packet)


def main(out_dir: Path) -> None:
    """Write every clip and ``captions.json`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for index, (name, (make, seconds)) in enumerate(CLIPS.items()):
        draw, audio = make(np.random.default_rng(SEED + index), seconds)
        write_clip(out_dir / name, draw, audio, seconds)
        print(f"{name}: {(out_dir / name).stat().st_size / 1024:.0f} KiB")
    captions = out_dir / "captions.json"
    captions.write_text(json.dumps(CAPTIONS, indent=2) + "\n")
    print(f"{captions.name}: {len(CAPTIONS)} captions")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
