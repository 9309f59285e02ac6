"""Measuring an echo canceller against a simulated room's ground truth."""

from __future__ import annotations

import numpy as np
from core.audio.format import FRAME_MS

ACTIVE_BELOW_PEAK_DB = 40.0  # frames this far under the loudest echo frame count as far-end silence


def frame_power(samples: np.ndarray, frame: int) -> np.ndarray:
    """Mean square of each whole frame."""
    count = len(samples) // frame
    return np.mean(np.square(samples[: count * frame].astype(np.float64)).reshape(count, frame), axis=1)


def echo_reduction_db(mic_echo: np.ndarray, residual: np.ndarray, rate: int, skip_s: float = 1.0) -> float:
    """ERLE: power of the echo as it reached the mic over the power of what the canceller left of it.

    `residual` is the canceller's output when the mic heard nothing but the echo (and noise).
    The first `skip_s` are left out as convergence time, and so are frames where the echo is
    silent (the speaker paused), where the ratio says nothing about cancelling.
    """
    frame = rate * FRAME_MS // 1000
    skip = int(skip_s * rate) // frame
    echo = frame_power(mic_echo, frame)[skip:]
    left = frame_power(residual, frame)[skip : skip + len(echo)]
    echo = echo[: len(left)]
    if not len(echo) or echo.max() <= 0:
        raise ValueError("no echo to measure after the convergence time")
    active = echo >= echo.max() * 10 ** (-ACTIVE_BELOW_PEAK_DB / 10)
    return float(10 * np.log10(echo[active].sum() / max(left[active].sum(), 1e-20)))
