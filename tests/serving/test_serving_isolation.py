"""Isolated decoding: a hanging or crashing decoder becomes a typed error for that video only."""

from __future__ import annotations

import shutil
from pathlib import Path

import media_factory as mf
import pytest
from serving_helpers import FakePipeline, fault_decode

from tagging.errors import DecoderCrash, DecodeTimeout, MediaNotFound, VideoOpenFailure
from tagging.serving.hook import HookConfig, UploadHook
from tagging.serving.isolation import DecodePool, DecodeSettings


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("faulty")
    good = mf.make_video(d / "good.mp4", seconds=1.0)
    out = {"good": good, "random": mf.random_bytes(d / "random.mp4")}
    for name in ("hang", "crash", "oom"):
        out[name] = Path(shutil.copy(good, d / f"{name}.mp4"))
    return out


def test_pool_survives_hang_crash_and_oom(faulty: dict[str, Path]) -> None:
    with DecodePool(workers=1, timeout_s=3, memory_mb=2048, decode_fn=fault_decode) as pool:
        assert len(pool.decode(faulty["good"]).frames) == DecodeSettings().num_frames
        with pytest.raises(DecodeTimeout, match="longer than 3 s") as info:
            pool.decode(faulty["hang"])
        assert str(faulty["hang"]) in str(info.value)
        with pytest.raises(DecoderCrash, match="died"):
            pool.decode(faulty["crash"])
        with pytest.raises(DecoderCrash, match="out of memory"):
            pool.decode(faulty["oom"])
        with pytest.raises(VideoOpenFailure):  # typed errors of the decode itself come back as themselves
            pool.decode(faulty["random"])
        assert len(pool.decode(faulty["good"]).frames) == DecodeSettings().num_frames  # replaced worker serves the next file
        assert pool.restarts == 2 and pool.workers == 1


def test_hook_turns_a_hang_into_a_typed_error_for_that_video_only(faulty: dict[str, Path], tmp_path: Path) -> None:
    cfg = HookConfig(db=str(tmp_path / "db"), decode_timeout_s=3, maintenance_interval_s=None)
    with UploadHook(cfg, pipeline=FakePipeline(), decode_fn=fault_decode) as hook:
        assert hook("file://" + str(faulty["good"]), "v-good")["video_id"] == "v-good"
        with pytest.raises(DecodeTimeout):
            hook(faulty["hang"], "v-hang")
        with pytest.raises(DecoderCrash):
            hook(faulty["crash"], "v-crash")
        with pytest.raises(MediaNotFound):
            hook(tmp_path / "missing.mp4", "v-missing")
        assert hook(faulty["good"], "v-good2")["video_id"] == "v-good2"
        assert hook.get("v-hang") is None and hook.get("v-good2") is not None


def test_a_caller_waiting_for_a_worker_gets_a_typed_error_when_the_pool_closes(faulty: dict[str, Path]) -> None:
    import threading

    pool = DecodePool(workers=1, timeout_s=60, decode_fn=fault_decode)
    errors: dict[str, BaseException] = {}

    def call(name: str) -> None:
        try:
            pool.decode(faulty[name])
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertions
            errors[name] = exc

    busy = threading.Thread(target=call, args=("hang",))
    busy.start()
    while pool._idle.qsize():  # the one worker is taken by the hanging file
        threading.Event().wait(0.05)
    waiting = threading.Thread(target=call, args=("good",))
    waiting.start()
    threading.Event().wait(0.3)
    pool.close()
    waiting.join(5)
    busy.join(5)
    assert not waiting.is_alive() and not busy.is_alive()
    assert isinstance(errors["good"], DecoderCrash) and "closed" in str(errors["good"])
    assert str(faulty["good"]) in str(errors["good"])
    assert isinstance(errors["hang"], DecoderCrash)
