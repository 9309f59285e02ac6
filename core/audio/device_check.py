"""Device checks for the settings pane: a test tone on a speaker, and a microphone recorder with a
live level (the voice-clone recorder and the input meter). Both run on their own thread."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import numpy as np

from core.audio.devices import Microphone, Speaker
from core.audio.levels import FLOOR_DB, peak_db
from core.audio.resample import StreamResampler
from core.audio.format import RATE

log = logging.getLogger(__name__)


def tone(rate: int, seconds: float = 0.6, hz: float = 440.0, level: float = 0.25) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    ramp = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)  # 20 ms fades: no clicks
    return (level * ramp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def play_tone(device: str | None, on_notice: Callable[[str], None] | None = None, seconds: float = 0.6) -> int:
    """Play a short tone on `device` (blocks for its length); returns the samples played."""
    with Speaker(device, on_notice=on_notice) as speaker:
        samples = tone(speaker.rate, seconds)
        written = speaker.write(samples)
        speaker.finish_audio()
        deadline = time.monotonic() + seconds + 1.0
        while speaker.queued and time.monotonic() < deadline:
            time.sleep(0.02)
    return written


class Recorder:
    """Records a microphone at 16 kHz until stopped or `max_seconds`; `level_db` is the peak of the
    last 100 ms, for a meter."""

    def __init__(
        self, device: str | None = None, max_seconds: float = 30.0, on_notice: Callable[[str], None] | None = None
    ) -> None:
        self.device = device
        self.max_seconds = max_seconds
        self.on_notice = on_notice
        self.level_db = FLOOR_DB
        self._parts: list[np.ndarray] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    @property
    def seconds(self) -> float:
        return sum(len(p) for p in self._parts) / RATE

    def start(self) -> "Recorder":
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> np.ndarray:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return np.concatenate(self._parts) if self._parts else np.zeros(0, np.float32)

    def _run(self) -> None:
        try:
            with Microphone(self.device, on_notice=self.on_notice) as mic:
                to_16k = StreamResampler(mic.rate, RATE)
                while not self._stop.is_set() and self.seconds < self.max_seconds:
                    if mic.wait(mic.rate // 10, timeout=0.2):
                        block = to_16k.process(mic.read(mic.available))
                        self._parts.append(block)
                        self.level_db = peak_db(block)
        except Exception as exc:  # a device that cannot open: shown, never raised on a thread
            log.exception("recording from the microphone %r failed", self.device)
            self.error = str(exc)
