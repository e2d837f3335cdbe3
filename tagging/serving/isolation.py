"""Decoding in child processes: a hang or a crash costs one video, never the caller.

:class:`DecodePool` keeps ``workers`` long-lived child processes (``spawn`` context,
so no lock or thread of the parent is inherited). Each child limits its own address
space with ``RLIMIT_AS`` and then serves decode requests over a pipe. The parent
waits for an answer with a wall-clock timeout:

* no answer in time  -> the child is killed and replaced, :class:`DecodeTimeout`;
* the pipe breaks    -> the child died (segfault, ``os._exit``, OOM kill) and is
  replaced, :class:`DecoderCrash`;
* ``MemoryError``    -> :class:`DecoderCrash` naming the memory limit;
* a typed media error raised in the child comes back as the same class.

``decode`` is thread-safe and blocks until a worker is free, so N threads calling it
use the N children in parallel.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from tagging import errors as terrors
from tagging.errors import DecoderCrash, DecodeTimeout, MediaError, TaggingError
from tagging.media import DecodedMedia, MediaLimits
from tagging.media.types import DEFAULT_NUM_FRAMES

logger = logging.getLogger(__name__)

DEFAULT_DECODE_TIMEOUT_S = 120.0  # wall-clock limit of one decode
DEFAULT_DECODE_MEMORY_MB = 4096  # address-space limit of one decode process

# (path, settings) -> DecodedMedia, or anything picklable built from it (the backfill's ``Prepared``)
DecodeFn = Callable[[str, Any], Any]


@dataclass
class DecodeSettings:
    """What a child needs to decode like the pipeline does (a pure function of file + settings)."""

    limits: MediaLimits = field(default_factory=MediaLimits)
    num_frames: int = DEFAULT_NUM_FRAMES
    max_side: int = 320
    sample_rate: int = 16000

    @classmethod
    def from_pipeline_config(cls, cfg: Any) -> DecodeSettings:
        """Take the decode settings of a :class:`~tagging.pipeline.PipelineConfig`."""
        return cls(cfg.limits, cfg.num_frames, cfg.max_side, cfg.sample_rate)


def default_decode(path: str, settings: DecodeSettings) -> DecodedMedia:
    """Probe (limits first) then decode, exactly as ``Pipeline.decode`` does."""
    from tagging.media import decode, probe

    probe(path, settings.limits)
    return decode(path, settings.limits, settings.num_frames, settings.max_side, settings.sample_rate)


def _child_main(conn: Connection, decode_fn: DecodeFn, memory_mb: int, warmup: Callable[[], None] | None = None) -> None:
    """Body of a decode child: limit memory, warm up (imports, models), then answer requests until told to stop."""
    if memory_mb > 0:
        import resource

        limit = memory_mb * 1024 * 1024
        try:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        except (ValueError, OSError) as exc:  # e.g. a hard limit below ours
            logger.warning("cannot set RLIMIT_AS=%d MiB: %s", memory_mb, exc)
    if warmup is not None:  # before "ready": start-up never counts against a file's timeout
        try:
            warmup()
        except Exception as exc:  # noqa: BLE001 - the decodes will report what is wrong
            logger.warning("decode worker warm-up failed: %s", exc)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        path, settings = task
        try:
            conn.send(("ok", decode_fn(path, settings)))
        except TaggingError as exc:
            conn.send(("err", exc.error_class, exc.source, exc.reason))
        except MemoryError:
            conn.send(("err", "DecoderCrash", path, f"decoder ran out of memory (limit {memory_mb} MiB)"))
        except Exception as exc:  # noqa: BLE001 - anything else is a decoder bug for this file
            conn.send(("err", "DecoderCrash", path, f"decoder raised {type(exc).__name__}: {exc}"))


class _Worker:
    """One child process and the parent's end of its pipe."""

    def __init__(self, ctx: Any, decode_fn: DecodeFn, memory_mb: int, warmup: Callable[[], None] | None = None) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_child_main, args=(child, decode_fn, memory_mb, warmup), daemon=True,
                                name="tagging-decode")
        self.proc.start()
        child.close()
        self.started = False
        self._kill_lock = threading.Lock()

    def wait_ready(self, timeout_s: float) -> None:
        """Wait for the child's start-up (imports) so that it never counts against a file's timeout.

        Raises:
            RuntimeError: The child did not start.
        """
        if self.started:
            return
        try:
            if self.conn.poll(timeout_s) and self.conn.recv()[0] == "ready":
                self.started = True
                return
        except (EOFError, OSError):
            pass
        raise RuntimeError(f"decode worker did not start within {timeout_s:g} s (exit code {self.proc.exitcode})")

    def kill(self) -> None:
        """Stop the child and close the pipe, once: the pool's ``close`` and the thread using this worker
        may both get here, and closing the pipe's descriptor twice could close an unrelated file."""
        with self._kill_lock:
            if self.proc.is_alive():
                self.proc.kill()
            self.proc.join(5)
            if not self.conn.closed:
                self.conn.close()


def _error_from(name: str, source: str, reason: str) -> MediaError:
    cls = getattr(terrors, name, None)
    if isinstance(cls, type) and issubclass(cls, MediaError):
        return cls(source, reason)
    return DecoderCrash(source, f"{name}: {reason}")


class DecodePool:
    """A pool of isolated decode processes with a per-file timeout and memory limit.

    Args:
        settings: Decode settings (limits, frames, size, sample rate).
        workers: Number of child processes.
        timeout_s: Wall-clock seconds one file may take.
        memory_mb: Address-space limit of each child (``RLIMIT_AS``); 0 for none.
        decode_fn: Top-level (picklable) function ``(path, settings) -> DecodedMedia`` (or a
            picklable result built from it); tests pass one that hangs or crashes.
        warmup: Top-level (picklable) function each child runs once before it takes work
            (imports, a model load); a failure there is logged, not raised.
    """

    def __init__(self, settings: DecodeSettings | None = None, workers: int = 1, timeout_s: float = DEFAULT_DECODE_TIMEOUT_S,
                 memory_mb: int = DEFAULT_DECODE_MEMORY_MB, decode_fn: DecodeFn = default_decode,
                 warmup: Callable[[], None] | None = None) -> None:
        self.settings = settings or DecodeSettings()
        self.timeout_s, self.memory_mb, self.decode_fn = float(timeout_s), int(memory_mb), decode_fn
        self.warmup = warmup
        self._ctx = mp.get_context("spawn")
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self.start_timeout_s = 120.0
        self.restarts = 0
        for _ in range(max(1, int(workers))):
            self._add()

    @property
    def workers(self) -> int:
        """Number of child processes."""
        return len(self._all)

    def _add(self) -> None:
        w = _Worker(self._ctx, self.decode_fn, self.memory_mb, self.warmup)
        with self._lock:
            self._all.append(w)
        self._idle.put(w)

    def _replace(self, w: _Worker) -> None:
        w.kill()
        with self._lock:
            if w in self._all:
                self._all.remove(w)
            self.restarts += 1
        if not self._closed:
            self._add()

    def _take(self, path: str) -> _Worker:
        """Wait for an idle worker; a caller still waiting when the pool closes gets a typed error."""
        while not self._closed:
            try:
                w = self._idle.get(timeout=0.1)
            except queue.Empty:
                continue
            if not self._closed:
                return w
        raise DecoderCrash(path, "the decode pool is closed")

    def decode(self, path: str | Path, timeout_s: float | None = None) -> Any:
        """Decode one file in a child process.

        Args:
            path: The media file.
            timeout_s: Override of the pool's timeout for this file.

        Returns:
            What ``decode_fn`` returned: the decoded media by default.

        Raises:
            DecodeTimeout: The child did not answer in time (it is killed and replaced).
            DecoderCrash: The child died or ran out of memory.
            MediaError: Any typed media error of the decode itself.
        """
        path = str(path)
        limit = self.timeout_s if timeout_s is None else float(timeout_s)
        w = self._take(path)
        try:
            w.wait_ready(self.start_timeout_s)
        except RuntimeError as exc:
            self._replace(w)
            raise DecoderCrash(path, str(exc)) from None
        t0 = time.perf_counter()
        try:
            w.conn.send((path, self.settings))
            if not w.conn.poll(limit):
                logger.warning("%s: decode timed out after %.1f s; killing worker %d", path, limit, w.proc.pid)
                self._replace(w)
                raise DecodeTimeout(path, f"decoding took longer than {limit:g} s")
            answer = w.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            w.proc.join(1)
            code = w.proc.exitcode
            self._replace(w)
            raise DecoderCrash(path, f"decoder process died (exit code {code})") from None
        except BaseException:
            if w in self._all and w.proc.is_alive() and not w.conn.closed:
                self._idle.put(w)
            raise
        self._idle.put(w)
        logger.debug("%s decoded in %.3f s", path, time.perf_counter() - t0)
        if answer[0] == "ok":
            return answer[1]
        raise _error_from(*answer[1:])

    def close(self) -> None:
        """Stop every child (idempotent)."""
        self._closed = True
        with self._lock:
            workers = list(self._all)
            self._all.clear()
        for w in workers:
            try:
                w.conn.send(None)
            except (OSError, BrokenPipeError):
                pass
            w.proc.join(2)
            w.kill()

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def cpu_workers(requested: int | None = None) -> int:
    """A sensible default worker count: the request, else cores - 1 (at least 1)."""
    return max(1, requested if requested else (os.cpu_count() or 2) - 1)
