"""Simulated audio devices with the same shape as real ones: a voice that plays into the session
as a microphone would (10 ms frames, in real time), and an output device that pulls 10 ms blocks
from the playback queue on its own clock and keeps what it played."""
from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np

from core.audio.playback import PlaybackQueue

FRAME_MS = 10


class PacedClock:
    """Ticks every `period` seconds on an absolute schedule, so lateness never accumulates."""

    def __init__(self, period: float) -> None:
        self.period = period
        self._start = time.perf_counter()
        self._ticks = 0

    def wait_next(self) -> float:
        self._ticks += 1
        target = self._start + self._ticks * self.period
        delay = target - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        return time.perf_counter()


class SimulatedMic:
    """Plays `voice` (16 kHz) then silence into `sink(frame, captured_at)` in real time."""

    def __init__(self, voice: np.ndarray, rate: int = 16000, noise_db: float = -70.0, seed: int = 0) -> None:
        self.voice = voice.astype(np.float32)
        self.rate = rate
        self.frame = rate * FRAME_MS // 1000
        self._noise = 10 ** (noise_db / 20)
        self._rng = np.random.default_rng(seed)
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self, sink: Callable[[np.ndarray, float], None], until: Callable[[], bool],
            max_seconds: float = 120.0) -> None:
        """Blocks: feeds the voice, then silence until `until()` is true or `max_seconds` pass."""
        clock = PacedClock(FRAME_MS / 1000)
        pos = 0
        limit = int(max_seconds * 1000 / FRAME_MS)
        for _ in range(limit):
            if self._stop.is_set():
                return
            frame = self._rng.normal(0, self._noise, self.frame).astype(np.float32)
            if pos < len(self.voice):
                part = self.voice[pos : pos + self.frame]
                frame[: len(part)] += part
            elif until():
                return
            pos += self.frame
            sink(frame, clock.wait_next())


class SimulatedSpeaker:
    """An output device: a thread pulling 10 ms blocks from the playback queue in real time."""

    def __init__(self, queue: PlaybackQueue) -> None:
        self.queue = queue
        self.rate = queue.device_rate
        self.block = self.rate * FRAME_MS // 1000
        self._played: list[np.ndarray] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-speaker", daemon=True)

    def start(self) -> "SimulatedSpeaker":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def played(self) -> np.ndarray:
        return np.concatenate(self._played) if self._played else np.zeros(0, np.float32)

    def _run(self) -> None:
        clock = PacedClock(FRAME_MS / 1000)
        while not self._stop.is_set():
            clock.wait_next()
            self._played.append(self.queue.read(self.block))
