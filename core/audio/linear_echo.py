"""Linear echo cancellation: subtract an adaptive estimate of the speaker's echo from the mic and
nothing else, so the user's voice passes through untouched even while the app talks.

Why beside WebRTC's AEC3: AEC3 removes 40+ dB of echo, much of it with a non-linear suppressor
that, during double talk, carves the user's voice as well. Recognition of the user's voice over
the app's own went from ~2% word error alone to ~33% through AEC3 (bench duplex, double talk);
through this filter it stays within ~1-2 points of alone. So recognition listens here, while
voice activity keeps listening to AEC3, whose output holds far less echo.

The filter: a partitioned-block frequency-domain adaptive filter (multidelay filter, MDF). The
echo path (bulk delay + room reverberation, `tail_ms` long) is cut into K partitions of one 10 ms
block each; every block costs two FFTs of the far end and error, one inverse FFT per filter, and a
K-partition gradient with the gradient constraint (the update must stay a causal filter of one
block per partition, which an inverse and forward FFT of the gradient enforce). Overlap-save with
2N-point FFTs, so the output is in step with the input: no added delay. Each bin is normalized by
the far end's power over the whole filter span, an NLMS per bin, so speech's coloured spectrum
does not slow the quiet bins.

Double talk, two defences:
- Step size. In frames with only echo, the error is the residual echo, whose energy stays near a
  steady share (`leakage`) of the echo estimate's; near-end speech pushes the error above that.
  The step is scaled by the share of the error that is expected residual echo (`echo_share`).
  The leakage is learnt from the same frames, but may rise only slowly (`next_leakage`): in
  double talk the user's pauses between words look like echo alone, and a leakage free to follow
  them climbs until the filter adapts at full step on the user's voice, and can then leave more
  echo than it removes, for seconds.
- Two filters (foreground/background). The background adapts; the output comes from the
  foreground, which only takes a copy of the background once the background's error has been
  clearly lower for a while. A background pulled off course by double talk is put back to the
  foreground when its error is clearly higher. With the scaled step alone, one filter still
  drifted in double talk (5-13 dB of echo reduction left instead of 14-35 dB).
The price: an echo path that changes (volume, a moved laptop) also raises the error and looks like
double talk. The background keeps adapting at a fifth of the step then (`MIN_SHARE`), so the
filter does find the new path, but slowly: after the speaker got 6 dB louder, 6-10 dB of echo
reduction for 3 s, 15 dB after 5 s, 20 after 7 s (a fixed full step: ~20 dB after 2 s, but no
defence against double talk). Faster ways tried (the leakage free to rise; full step after a run
of foreground copies) let double talk pull the filter off course in some runs.

Measured, 16 kHz, 400 ms tail (numpy, one core): ~0.13 ms per 10 ms frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from core.audio.format import FRAME_MS, RATE


FAR_ACTIVE = 1e-7  # mean square of a far frame (-70 dBFS) below which nothing plays: nothing to learn
WARMUP_FRAMES = 50  # far-end frames adapted at full step: there is no echo estimate to judge by yet
LEAKAGE_RATE = 0.05  # per frame, times the echo share: the leakage follows convergence within ~0.2 s
LEAKAGE_RISE = 0.005  # but grows at most this much a frame (x1.65 a second); 0.015 let double talk in
# The leakage follows the lower edge of the frames' error-to-estimate ratios, so most frames of echo
# alone sit above it; unscaled, they adapted at a fraction of the step (2 dB less echo reduction
# in the first seconds).
SHARE_BIAS = 3.0
# The background's least step share, however much the frame looks like double talk: how a changed
# echo path is found. 0.5 let double talk pull the filter off course.
MIN_SHARE = 0.2
ERROR_SMOOTHING = 0.9  # per frame: foreground and background errors compared over ~100 ms
COPY_DB = 1.0  # background better by this much: the foreground takes it
RESET_DB = 6.0  # background worse by this much: it was pulled off course, back to the foreground


@dataclass(frozen=True)
class LinearEchoConfig:
    tail_ms: float = 400.0  # echo path covered: bulk delay (up to ~250 ms) + the reverberation worth it
    step: float = 1.0  # NLMS step per bin at full echo share; the gradient constraint halves its effect


def partitions(config: LinearEchoConfig, block: int, rate: int) -> int:
    return int(np.ceil(config.tail_ms * rate / 1000 / block))


def echo_estimate(weights: np.ndarray, history: np.ndarray) -> np.ndarray:
    """Overlap-save: the last half of the inverse FFT is the linear convolution of the far end
    with the partitioned filter for the newest block. weights, history: (K, N+1) spectra."""
    spectrum = np.einsum("kf,kf->f", weights, history)
    return np.fft.irfft(spectrum)[len(spectrum) - 1 :]


def constrained_gradient(history: np.ndarray, error: np.ndarray, power: np.ndarray) -> np.ndarray:
    """NLMS gradient per bin for every partition, cut back to one causal block per partition.
    history: (K, N+1) far spectra; error: (N,) time-domain error; power: (N+1,) far power."""
    n = len(error)
    error_spectrum = np.fft.rfft(np.concatenate([np.zeros(n), error]))
    gradient = np.fft.irfft(np.conj(history) * (error_spectrum / power), axis=1)
    gradient[:, n:] = 0.0
    return np.fft.rfft(gradient, axis=1)


def echo_share(leakage: float, estimate_energy: float, error_energy: float) -> float:
    """Share of the error that is the residual echo the filter normally leaves (at most 1); the
    rest is the near end (double talk), which must not drive adaptation."""
    return min(1.0, SHARE_BIAS * leakage * estimate_energy / max(error_energy, 1e-20))


def next_leakage(leakage: float, share: float, estimate_energy: float, error_energy: float) -> float:
    """The leakage moves towards this frame's error-to-estimate ratio as far as the frame looks
    like echo alone; it falls as fast as the filter converges but rises only slowly."""
    ratio = error_energy / max(estimate_energy, 1e-20)
    return min(leakage * (1 + LEAKAGE_RISE), leakage + LEAKAGE_RATE * share * (ratio - leakage))


class LinearEchoCanceller:
    """Cleans one 10 ms mic frame at a time against the 10 ms handed to the speaker at the same
    time, by subtraction only. Not thread-safe: the audio worker owns it."""

    def __init__(self, config: LinearEchoConfig = LinearEchoConfig(), rate: int = RATE) -> None:
        if rate * FRAME_MS % 1000:
            raise ValueError(f"{rate} Hz has no whole 10 ms frame")
        self.config = config
        self.frame = rate * FRAME_MS // 1000
        k, bins = partitions(config, self.frame, rate), self.frame + 1
        self._far_prev = np.zeros(self.frame)
        self._history = np.zeros((k, bins), complex)  # far spectra, newest block first
        self._history_power = np.zeros((k, bins))
        self._background = np.zeros((k, bins), complex)
        self._foreground = np.zeros((k, bins), complex)
        # Regularizes the per-bin normalization: far power of -70 dBFS white noise over the span.
        self._power_floor = 2 * self.frame * k * FAR_ACTIVE
        self._background_error = 0.0
        self._foreground_error = 0.0
        self.leakage = 1.0
        self._active_frames = 0

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        """`near`: 10 ms from the mic; `far`: the 10 ms handed to the speaker at the same time
        (zeros while nothing plays). Returns the mic minus the estimated echo, float32."""
        if np.shape(near) != (self.frame,) or np.shape(far) != (self.frame,):
            raise ValueError(f"frames must be {self.frame} mono samples, got {np.shape(near)} and {np.shape(far)}")
        near = np.asarray(near, dtype=np.float64)
        far = np.asarray(far, dtype=np.float64)
        self._push_far(far)
        background_error = near - echo_estimate(self._background, self._history)
        foreground_error = near - echo_estimate(self._foreground, self._history)
        if np.mean(np.square(far)) >= FAR_ACTIVE:
            share = self._echo_share(near - background_error, background_error)
            if self._compare(background_error, foreground_error):
                background_error = foreground_error  # the background is the foreground again
            power = self._history_power.sum(axis=0) + self._power_floor
            step = self.config.step * max(MIN_SHARE, share)
            self._background += step * constrained_gradient(self._history, background_error, power)
        return foreground_error.astype(np.float32)

    def _push_far(self, far: np.ndarray) -> None:
        spectrum = np.fft.rfft(np.concatenate([self._far_prev, far]))
        self._far_prev = far
        self._history[1:] = self._history[:-1]
        self._history[0] = spectrum
        self._history_power[1:] = self._history_power[:-1]
        self._history_power[0] = np.abs(spectrum) ** 2

    def _echo_share(self, estimate: np.ndarray, error: np.ndarray) -> float:
        estimate_energy, error_energy = float(estimate @ estimate), float(error @ error)
        self._active_frames += 1
        warm = self._active_frames > WARMUP_FRAMES
        share = echo_share(self.leakage, estimate_energy, error_energy) if warm else 1.0
        self.leakage = next_leakage(self.leakage, share, estimate_energy, error_energy)
        return share

    def _compare(self, background_error: np.ndarray, foreground_error: np.ndarray) -> bool:
        """Two-path bookkeeping; returns whether the background was put back to the foreground."""
        a = ERROR_SMOOTHING
        self._background_error = a * self._background_error + (1 - a) * float(np.sum(background_error**2))
        self._foreground_error = a * self._foreground_error + (1 - a) * float(np.sum(foreground_error**2))
        if self._background_error * 10 ** (COPY_DB / 10) < self._foreground_error:
            self._foreground[:] = self._background
            self._foreground_error = self._background_error
        elif self._background_error > self._foreground_error * 10 ** (RESET_DB / 10):
            self._background[:] = self._foreground
            self._background_error = self._foreground_error
            return True
        return False
