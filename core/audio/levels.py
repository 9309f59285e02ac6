"""Input and output levels for the meters, read off the audio worker's path without slowing it down."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from core.audio.playback import PlaybackQueue
from core.events import Levels

FLOOR_DB = -90.0


def level_db(peak: float) -> float:
    return max(FLOOR_DB, 20 * math.log10(peak)) if peak > 0 else FLOOR_DB


def peak_db(samples: np.ndarray) -> float:
    return level_db(float(np.max(np.abs(samples))) if len(samples) else 0.0)


class LevelReporter:
    """Wraps the session's feed: each 10 ms frame updates the input peak, and every `period_ms`
    the highest input and output peaks since the last report go out as one `Levels` event."""

    def __init__(self, playback: PlaybackQueue, on_levels: Callable[[Levels], None], period_ms: int = 50) -> None:
        self.playback = playback
        self.on_levels = on_levels
        self.frames_per_report = max(1, period_ms // 10)
        self._frames = 0
        self._input = self._output = FLOOR_DB

    def wrap(self, feed: Callable[..., None]) -> Callable[..., None]:
        def metered(frame: np.ndarray, captured_at: float, speech: np.ndarray | None = None) -> None:
            self._input = max(self._input, peak_db(frame))
            self._output = max(self._output, level_db(self.playback.last_peak))
            self._frames += 1
            if self._frames >= self.frames_per_report:
                self.on_levels(Levels(self._input, self._output))
                self._frames, self._input, self._output = 0, FLOOR_DB, FLOOR_DB
            feed(frame, captured_at, speech)

        return metered
