"""The playback queue between reply producers and the output device.

Producers write chunks at the engine's rate; they are resampled (streaming, soxr) to the device
rate on the producer's side so the device side only copies. The device side never waits: it takes
what is there and fills the rest with silence. A barge-in fades the reply out over a few
milliseconds instead of cutting it (a cut clicks) and drops the rest; a hold (someone may be
cutting in) fades it out the same way but keeps the rest, which `resume` fades back in.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Callable

import numpy as np
import soxr

FADE_MS = 8


class PlaybackQueue:
    def __init__(self, device_rate: int, clock: Callable[[], float] = time.perf_counter) -> None:
        self.device_rate = device_rate
        self.clock = clock
        self._chunks: collections.deque[np.ndarray] = collections.deque()
        self._lock = threading.Lock()
        self._resampler: soxr.ResampleStream | None = None
        self._source_rate = 0
        self._pending_first = False
        self._active = False  # a reply is being written: an empty read then is an underrun
        self.first_sample_at: float | None = None  # clock time the reply's first sample went out
        self.written = 0  # device samples queued for the current reply
        self.played = 0  # device samples of the current reply handed to the device
        self.underruns = 0
        self.last_peak = 0.0  # peak of the last block handed to the device: the output meter
        self._paused = False
        self._fading: np.ndarray = np.zeros(0, np.float32)  # the fade that a pause still plays

    def begin_reply(self) -> None:
        with self._lock:
            self.first_sample_at = None
            self._pending_first = True
            self._active = True
            self._resampler = None
            self.written = self.played = 0
            self._paused, self._fading = False, np.zeros(0, np.float32)

    def write(self, samples: np.ndarray, rate: int) -> int:
        """Queue reply audio; returns the reply's total device samples queued so far."""
        if rate != self.device_rate:
            if self._resampler is None or self._source_rate != rate:
                self._resampler = soxr.ResampleStream(rate, self.device_rate, 1, dtype="float32")
                self._source_rate = rate
            samples = self._resampler.resample_chunk(samples.astype(np.float32, copy=False))
        with self._lock:
            if len(samples):
                self._chunks.append(samples.astype(np.float32, copy=False))
                self.written += len(samples)
            return self.written

    def end_reply(self) -> None:
        """No more audio for this reply: drain what the resampler holds, stop counting underruns."""
        if self._resampler is not None:
            tail = self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            with self._lock:
                if len(tail):
                    self._chunks.append(tail.astype(np.float32, copy=False))
                    self.written += len(tail)
        with self._lock:
            self._active = False

    def fade_out(self, ms: float = FADE_MS) -> None:
        """Stop the reply: the next `ms` of queued audio ramps down to silence, the rest is dropped."""
        with self._lock:
            head = self._faded(ms, down=True) if not self._paused else None  # paused: faded already
            self._chunks.clear()
            if head is not None and len(head):
                self._chunks.append(head)
            self._active = False
            self._resampler = None  # its buffered tail belongs to the dropped audio

    def pause(self, ms: float = FADE_MS) -> None:
        """Hold the reply: the next `ms` ramp down to silence, the rest waits for `resume`."""
        with self._lock:
            if not self._paused:
                self._paused, self._fading = True, self._faded(ms, down=True)

    def resume(self, ms: float = FADE_MS) -> None:
        """Go on where `pause` stopped, ramping up over `ms`; nothing happens when not paused."""
        with self._lock:
            if not self._paused:
                return
            self._paused = False
            head = self._faded(ms, down=False)
            if len(head):
                self._chunks.appendleft(head)
            if len(self._fading):  # resumed before the fade had finished playing
                self._chunks.appendleft(self._fading)
                self._fading = np.zeros(0, np.float32)

    def _faded(self, ms: float, down: bool) -> np.ndarray:
        """The next `ms` of queued audio taken off the queue, ramped down or up (lock held)."""
        head = self._take(int(self.device_rate * ms / 1000))
        ramp = np.linspace(1.0, 0.0, len(head), dtype=np.float32)
        return head * (ramp if down else ramp[::-1])

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def queued_samples(self) -> int:
        with self._lock:
            return sum(len(c) for c in self._chunks)

    def read(self, n: int) -> np.ndarray:
        """Called by the device side: exactly n samples, silence where nothing is queued."""
        out = np.zeros(n, np.float32)
        with self._lock:
            if self._paused:  # only the fade plays
                head, self._fading = self._fading[:n], self._fading[n:]
            else:
                head = self._take(n)
            out[: len(head)] = head
            self.played += len(head)
            self.last_peak = float(np.max(np.abs(head))) if len(head) else 0.0
            if len(head) and self._pending_first:
                self._pending_first = False
                self.first_sample_at = self.clock()
            if len(head) < n and self._active and not self._pending_first and not self._paused:
                self.underruns += 1  # waiting while paused is not an underrun
        return out

    def _take(self, n: int) -> np.ndarray:
        """Up to n samples off the front of the queue (caller holds the lock)."""
        parts, got = [], 0
        while got < n and self._chunks:
            chunk = self._chunks[0]
            take = min(n - got, len(chunk))
            parts.append(chunk[:take])
            got += take
            if take == len(chunk):
                self._chunks.popleft()
            else:
                self._chunks[0] = chunk[take:]
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)
