"""Pitch measurement, for checking what the voice styling did: F0 tracks from WORLD's Harvest and
the pitch shift between a voice and a styled copy of it.

The shift is measured frame by frame, not as a difference of two medians: the packaged voice sits
at 65-130 Hz with creak, and a tracker's whole-utterance median of it jumps by octaves from one
rendering to the next. Comparing time-aligned frames of the two tracks cancels the voice's own
contour; the frames where the tracks disagree by a whole number of octaves are the tracker's
slips (a shifter errs by cents, not by exact octaves), so they are folded back and counted.

The styled voice is tracked as if its rate were `rate / ratio`, which moves its F0 back into the
band the original was tracked in: a voice shifted down an octave has F0 at 35-65 Hz, where Harvest
locks onto the second harmonic. Both signals are then tracked alike. On a harmonic tone of known
F0 this reads Rubber Band R3, pedalboard and WORLD shifts from -12 to +12 semitones within 0.3 cents.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyworld

FRAME_MS = 10.0
FLOOR_HZ = 50.0  # the tracked band, for the original voice; a styled copy is viewed back into it
CEILING_HZ = 400.0


@dataclass(frozen=True)
class PitchShift:
    cents: float  # median shift of the styled voice against the original
    frames: int  # voiced frames compared
    octave_slips: float  # share of them where the tracks disagreed by octaves (folded back)


def f0_track(audio: np.ndarray, rate: int, ratio: float = 1.0) -> np.ndarray:
    """F0 in Hz per 10 ms frame of the signal seen at `rate / ratio` (0 where unvoiced), scaled
    back to the signal's real frequencies. `ratio` is the pitch change the signal is expected to
    carry; frame i then lies at i * 10 ms / ratio of the real signal."""
    x = np.asarray(audio, dtype=np.float64)
    f0, _ = pyworld.harvest(x, rate / ratio, f0_floor=FLOOR_HZ, f0_ceil=CEILING_HZ, frame_period=FRAME_MS)
    return f0 * ratio


def compare_tracks(original: np.ndarray, styled: np.ndarray, speed: float = 1.0,
                   semitones: float = 0.0) -> PitchShift:
    """The shift between an original's track (`f0_track(x, rate)`) and its styled copy's
    (`f0_track(y, rate, 2 ** (semitones / 12))`), the copy played `speed` times as fast."""
    ratio = 2.0 ** (semitones / 12)
    # Styled frame i sits at i / ratio real frames, which came from the original `speed` times later.
    source = np.round(np.arange(len(styled)) * speed / ratio).astype(int)
    inside = source < len(original)
    a, b = original[source[inside]], styled[inside]
    voiced = (a > 0) & (b > 0)
    if not voiced.any():
        return PitchShift(float("nan"), 0, 0.0)
    off = 1200 * np.log2(b[voiced] / a[voiced]) - 100 * semitones
    slips = np.round(off / 1200)
    return PitchShift(cents=float(np.median(off - 1200 * slips)) + 100 * semitones,
                      frames=int(voiced.sum()), octave_slips=float(np.mean(slips != 0)))


def measure_shift(original: np.ndarray, styled: np.ndarray, rate: int, speed: float = 1.0,
                  semitones: float = 0.0) -> PitchShift:
    """The pitch shift of `styled` against `original`, made from it at this speed and pitch."""
    return compare_tracks(f0_track(original, rate), f0_track(styled, rate, 2.0 ** (semitones / 12)),
                          speed, semitones)
