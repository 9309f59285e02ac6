"""Simulated devices with the same shape as real ones, for tests, benchmarks and `talk`.

`SimulatedRoomLoop` is the audio worker of a simulated laptop: every 10 ms tick the speaker takes
a block from the playback queue, the room turns it into an echo at the microphone together with
the user's voice and noise, the echo canceller cleans the microphone frame against what the speaker
was handed, and the session gets the result. It runs in real time (or `speed` times faster) and
keeps the ground truth: what was played, what the user said, what the session heard (both of the
canceller's outputs: see `core.audio.echo.CleanedFrame`).
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Callable, Protocol

import numpy as np

from core.audio.echo import CleanedFrame, EchoCanceller
from core.audio.playback import PlaybackQueue
from core.audio.resample import FrameSplitter, StreamResampler
from core.audio.room import RoomConfig, SimulatedRoom
from core.audio.format import FRAME, FRAME_MS, RATE


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


class VirtualClock:
    """Time that moves only when the loop ticks: a conversation runs as fast as the machine can
    take it, and every wait the session measures is in the conversation's own time."""

    def __init__(self, period: float = FRAME_MS / 1000, start: float = 0.0) -> None:
        self.period = period
        self.now = start

    def __call__(self) -> float:
        return self.now

    def wait_next(self) -> float:
        self.now += self.period
        return self.now


class VoiceSource(Protocol):
    """What the loop plays as the user's voice: 16 kHz frames by sample offset, up to `end`."""

    @property
    def end(self) -> int: ...

    def frame(self, start: int, n: int = FRAME) -> np.ndarray: ...


class VoiceTrack:
    """The user's voice in the room: pieces of 16 kHz audio placed at sample offsets; more can be
    placed while the loop runs (a test interrupting the reply at a chosen moment)."""

    def __init__(self, audio: np.ndarray | None = None) -> None:
        self._parts: list[tuple[int, np.ndarray]] = []
        self._lock = threading.Lock()
        if audio is not None and len(audio):
            self.add(audio, 0)

    def add(self, audio: np.ndarray, at_sample: int) -> None:
        with self._lock:
            self._parts.append((at_sample, audio.astype(np.float32)))

    @property
    def end(self) -> int:
        with self._lock:
            return max((start + len(a) for start, a in self._parts), default=0)

    def frame(self, start: int, n: int = FRAME) -> np.ndarray:
        out = np.zeros(n, np.float32)
        with self._lock:
            for at, audio in self._parts:
                lo, hi = max(start, at), min(start + n, at + len(audio))
                if lo < hi:
                    out[lo - start : hi - start] += audio[lo - at : hi - at]
        return out


class SimulatedRoomLoop:
    def __init__(
        self,
        playback: PlaybackQueue,
        room: RoomConfig | None = RoomConfig(),
        echo: EchoCanceller | None = None,
        speed: float = 1.0,
        record: bool = True,
    ) -> None:
        """`room=None`: the microphone hears only the user (headphones). `echo=None`: no
        cancellation (the session must then be half duplex). `record=False`: keep nothing of what
        was played and heard (an hour of it is a gigabyte)."""
        self.record = record
        self.playback = playback
        self.room = SimulatedRoom(room, record=record) if room is not None else None
        self.echo = echo
        self.speed = speed
        self._block = playback.device_rate * FRAME_MS // 1000
        self._to16k = StreamResampler(playback.device_rate, RATE)
        self._far_frames = FrameSplitter(FRAME)
        self._far_queue: collections.deque[np.ndarray] = collections.deque()
        self.played: list[np.ndarray] = []  # device-rate blocks handed to the speaker
        self.heard: list[np.ndarray] = []  # what the session was fed (after cancellation)
        self.heard_linear: list[np.ndarray] = []  # the canceller's linear output: for recognition
        self.ticks = 0
        self.muted = False  # the microphone hears nothing (the user's mute); set from any thread
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def played_audio(self) -> np.ndarray:
        return np.concatenate(self.played) if self.played else np.zeros(0, np.float32)

    def heard_audio(self) -> np.ndarray:
        return np.concatenate(self.heard) if self.heard else np.zeros(0, np.float32)

    def heard_linear_audio(self) -> np.ndarray:
        return np.concatenate(self.heard_linear) if self.heard_linear else np.zeros(0, np.float32)

    def run(
        self,
        feed: Callable[[np.ndarray, float, np.ndarray], None],
        user: np.ndarray | VoiceSource,
        until: Callable[[], bool],
        max_seconds: float,
        on_tick: Callable[[int], None] | None = None,
        clock: VirtualClock | None = None,
    ) -> None:
        """Blocks: plays the user's voice (16 kHz) into the room, then silence, until `until()` is
        true (checked once the user's track is over) or `max_seconds` pass. `on_tick(tick)` runs
        before each frame is fed (tick * 160 is the frame's first sample). With a virtual `clock`
        the loop does not wait for real time (`on_tick` may hold it instead)."""
        track = VoiceTrack(user) if isinstance(user, np.ndarray) else user
        pace: VirtualClock | PacedClock = clock or PacedClock(FRAME_MS / 1000 / self.speed)
        for tick in range(int(max_seconds * 1000 / FRAME_MS)):
            if self._stop.is_set() or (tick * FRAME >= track.end and until()):
                return
            if on_tick is not None:
                on_tick(tick)
            block = self.playback.read(self._block)
            if self.record:
                self.played.append(block)
            self._far_queue.extend(self._far_frames.push(self._to16k.process(block)))
            # The resampler's first output lags by its filter delay: silence until it flows.
            far = self._far_queue.popleft() if self._far_queue else np.zeros(FRAME, np.float32)
            voice = track.frame(tick * FRAME)
            mic = self.room.mic_frame(far, voice) if self.room is not None else voice
            if self.muted:
                mic = np.zeros(FRAME, np.float32)
            clean = self.echo.process_both(mic, far) if self.echo is not None else CleanedFrame(mic, mic)
            if self.record:
                self.heard.append(clean.suppressed)
                self.heard_linear.append(clean.linear)
            self.ticks = tick + 1
            feed(clean.suppressed, pace.wait_next(), clean.linear)
