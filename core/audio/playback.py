"""The playback queue between reply producers and the output device's callback.

Producers write chunks at the engine's rate; they are resampled (streaming, soxr) to the device
rate on the producer's side so the device callback only copies. The callback side never waits:
it takes what is there and fills the rest with silence.
"""
from __future__ import annotations

import collections
import threading
import time

import numpy as np
import soxr


class PlaybackQueue:
    def __init__(self, device_rate: int) -> None:
        self.device_rate = device_rate
        self._chunks: collections.deque[np.ndarray] = collections.deque()
        self._lock = threading.Lock()
        self._resampler: soxr.ResampleStream | None = None
        self._source_rate = 0
        self._pending_first = False
        self.first_sample_at: float | None = None  # perf_counter time the reply's first sample went out
        self.underruns = 0
        self._active = False  # a reply is being written: an empty read then is an underrun

    def begin_reply(self) -> None:
        with self._lock:
            self.first_sample_at = None
            self._pending_first = True
            self._active = True
            self._resampler = None

    def write(self, samples: np.ndarray, rate: int) -> None:
        if rate != self.device_rate:
            if self._resampler is None or self._source_rate != rate:
                self._resampler = soxr.ResampleStream(rate, self.device_rate, 1, dtype="float32")
                self._source_rate = rate
            samples = self._resampler.resample_chunk(samples.astype(np.float32, copy=False))
        if len(samples):
            with self._lock:
                self._chunks.append(samples.astype(np.float32, copy=False))

    def end_reply(self) -> None:
        """No more audio for this reply: drain what the resampler holds, stop counting underruns."""
        if self._resampler is not None:
            tail = self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            if len(tail):
                with self._lock:
                    self._chunks.append(tail.astype(np.float32, copy=False))
        with self._lock:
            self._active = False

    def flush(self) -> None:
        """Drop everything queued (a cancelled reply)."""
        with self._lock:
            self._chunks.clear()
            self._active = False
            self._resampler = None  # its buffered tail belongs to the dropped audio

    @property
    def queued_samples(self) -> int:
        with self._lock:
            return sum(len(c) for c in self._chunks)

    def read(self, n: int) -> np.ndarray:
        """Called by the device: exactly n samples, silence where nothing is queued."""
        out = np.zeros(n, np.float32)
        filled = 0
        with self._lock:
            while filled < n and self._chunks:
                chunk = self._chunks[0]
                take = min(n - filled, len(chunk))
                out[filled : filled + take] = chunk[:take]
                filled += take
                if take == len(chunk):
                    self._chunks.popleft()
                else:
                    self._chunks[0] = chunk[take:]
            if filled and self._pending_first:
                self._pending_first = False
                self.first_sample_at = time.perf_counter()
            if filled < n and self._active and not self._pending_first:
                self.underruns += 1
        return out
