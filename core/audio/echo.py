"""Cancelling the app's own voice at the microphone: WebRTC's audio processing (AEC3, noise
suppression, high-pass filter, gain control) through livekit's binding.

The app listens while it speaks through laptop speakers, so every 10 ms mic frame is cleaned with
the 10 ms frame the speaker was handed at the same moment as the far-end reference. AEC3 finds the
bulk delay between the two on its own (it searches a few hundred ms); `set_delay_ms` only gives it
a starting guess to converge from. In the simulated room (10-250 ms) the guess made no measurable
difference, so a rough figure from the device latencies is enough.

What WebRTC does to the signal besides removing echo, measured at 16 kHz with livekit 1.2: echo
cancellation delays the output by 8 ms (128 samples) and noise suppression by another 6 ms; echo
cancellation brings WebRTC's high-pass filter with it, which also turns the phase of a man's
voice around 100-300 Hz. So compare cleaned audio with clean audio through the same processing,
never sample by sample with the raw mic.

AEC3's suppressor also carves the user's voice while the app talks over it (double talk): speech
recognition of the user's voice went from ~2% word error alone to ~33% (bench duplex). So, with
echo cancellation on, every mic frame is also cleaned by a linear canceller of our own
(`core.audio.linear_echo`) that only subtracts the estimated echo: it leaves more echo (20-38 dB
removed once it has heard a reply, against AEC3's 45-60; less in its first seconds), but the
user's voice intact (word error within ~2 points of alone). `capture_both` / `process_both`
return both: voice activity must listen to AEC3's output (on the linear one, residual echo set
off the voice activity detector in all 12 replies measured), recognition to the linear one.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, replace

import numpy as np
from livekit import rtc

from core.audio.linear_echo import LinearEchoCanceller
from core.audio.format import FRAME_MS, RATE

MAX_DELAY_HINT_MS = 500
# Far frames waiting for their mic frame in the linear canceller, which pairs them one to one.
# Real devices render a few frames ahead of capture; more than this is a stall: drop the oldest.
FAR_QUEUE_FRAMES = 50


@dataclass(frozen=True)
class ProcessingSwitches:
    echo_cancellation: bool = True
    noise_suppression: bool = True
    high_pass_filter: bool = True
    gain_control: bool = False

    @property
    def any(self) -> bool:
        return self.echo_cancellation or self.noise_suppression or self.high_pass_filter or self.gain_control


@dataclass(frozen=True)
class CleanedFrame:
    """One 10 ms mic frame cleaned two ways, float32.

    `suppressed`: all of WebRTC's processing; the least echo, but the user's voice carved in double
    talk. For voice activity, which residual echo must not set off.
    `linear`: only the estimated echo subtracted; some echo left, the user's voice intact. For
    speech recognition.
    """

    suppressed: np.ndarray
    linear: np.ndarray


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Float in [-1, 1] -> int16, clipping what lies beyond full scale instead of wrapping it."""
    return np.clip(np.rint(samples * 32768.0), -32768, 32767).astype(np.int16)


def to_float32(samples: np.ndarray) -> np.ndarray:
    return samples.astype(np.float32) / np.float32(32768.0)


class EchoCanceller:
    """Cleans one 10 ms mic frame at a time against the matching 10 ms of speaker output.

    Not thread-safe: the audio worker owns it. With every switch off it is a pass-through that
    never calls WebRTC, so turning processing off really leaves the signal alone.
    """

    def __init__(
        self,
        rate: int = RATE,
        echo_cancellation: bool = True,
        noise_suppression: bool = True,
        high_pass_filter: bool = True,
        gain_control: bool = False,
    ) -> None:
        if rate * FRAME_MS % 1000:
            raise ValueError(f"{rate} Hz has no whole 10 ms frame")
        self.rate = rate
        self.frame = rate * FRAME_MS // 1000
        self._delay_ms: int | None = None
        self.switches = ProcessingSwitches(echo_cancellation, noise_suppression, high_pass_filter, gain_control)
        self._apm = self._build()
        self._linear = self._build_linear()
        self._far_queue: collections.deque[np.ndarray] = collections.deque(maxlen=FAR_QUEUE_FRAMES)

    def configure(self, **changes: bool) -> None:
        """Change switches by name (as in the constructor). Rebuilds WebRTC's module, which forgets
        what it has learnt about the room, so do it between turns rather than mid-reply."""
        self.switches = replace(self.switches, **changes)
        self._apm = self._build()
        self._linear = self._build_linear()
        self._far_queue.clear()

    def set_delay_ms(self, ms: int) -> None:
        """Hint: how long after a frame is handed to the speaker its echo reaches `process`."""
        if ms < 0:
            raise ValueError(f"delay must not be negative, got {ms}")
        # WebRTC refuses hints past 500 ms; a device reopening can report a moment's nonsense.
        self._delay_ms = min(int(ms), MAX_DELAY_HINT_MS)

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        """`near`: 10 ms from the mic; `far`: the 10 ms handed to the speaker at the same time
        (zeros while nothing plays). Returns the cleaned mic frame, float32."""
        return self.process_both(near, far).suppressed

    def process_both(self, near: np.ndarray, far: np.ndarray) -> CleanedFrame:
        """As `process`, with the linear canceller's output as well."""
        self.render(far)
        return self.capture_both(near)

    def render(self, far: np.ndarray) -> None:
        """10 ms handed to the speaker, as it is handed over. Real devices hand over and capture in
        bursts of their own; WebRTC buffers the far end and aligns it, so the two need not pair up."""
        if np.shape(far) != (self.frame,):
            raise ValueError(f"frames must be {self.frame} mono samples, got {np.shape(far)}")
        if self._apm is not None and self.switches.echo_cancellation:
            self._apm.process_reverse_stream(self._frame(far))
        if self._linear is not None:
            self._far_queue.append(np.asarray(far, dtype=np.float32))

    def capture(self, near: np.ndarray) -> np.ndarray:
        """10 ms from the mic; returns it cleaned, float32."""
        return self.capture_both(near).suppressed

    def capture_both(self, near: np.ndarray) -> CleanedFrame:
        """As `capture`, with the linear canceller's output as well (without echo cancellation
        there is no echo to subtract, and both are the same). The linear canceller pairs each mic
        frame with the oldest far frame not yet paired (silence if none): it learns a fixed lag
        between the two, up to its tail, but not one that wanders."""
        near = np.asarray(near, dtype=np.float32)
        if near.shape != (self.frame,):
            raise ValueError(f"frames must be {self.frame} mono samples, got {near.shape}")
        suppressed = self._suppress(near)
        if self._linear is None:
            return CleanedFrame(suppressed, suppressed)
        far = self._far_queue.popleft() if self._far_queue else np.zeros(self.frame, np.float32)
        return CleanedFrame(suppressed, self._linear.process(near, far))

    def _suppress(self, near: np.ndarray) -> np.ndarray:
        if self._apm is None:
            return near
        if self.switches.echo_cancellation and self._delay_ms is not None:
            # WebRTC wants the delay reported before every capture frame when AEC is on.
            self._apm.set_stream_delay_ms(self._delay_ms)
        mic = self._frame(near)
        self._apm.process_stream(mic)
        return to_float32(np.frombuffer(mic.data, dtype=np.int16))

    def _frame(self, samples: np.ndarray) -> rtc.AudioFrame:
        return rtc.AudioFrame(
            bytearray(to_int16(np.asarray(samples, dtype=np.float32)).tobytes()), self.rate, 1, self.frame
        )

    def _build_linear(self) -> LinearEchoCanceller | None:
        return LinearEchoCanceller(rate=self.rate) if self.switches.echo_cancellation else None

    def _build(self) -> rtc.AudioProcessingModule | None:
        s = self.switches
        if not s.any:
            return None
        return rtc.AudioProcessingModule(
            echo_cancellation=s.echo_cancellation,
            noise_suppression=s.noise_suppression,
            high_pass_filter=s.high_pass_filter,
            auto_gain_control=s.gain_control,
        )
