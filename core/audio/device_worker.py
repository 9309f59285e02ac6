"""The audio worker for real devices: the one thread between the device callbacks and the session.

Each pass it takes what the microphone delivered, turns it into 16 kHz 10 ms frames, tops the
speaker up from the playback queue (keeping only a few blocks queued, so a stop is quick to hear),
remembers exactly what it handed the speaker as the echo canceller's far-end reference, cleans
each microphone frame against it and feeds the session both cleanings: the fully suppressed one
for voice activity, the linear one for speech recognition. The device callbacks only copy.

A muted microphone's samples are replaced by silence as they are taken, before echo cancellation,
voice activity and recognition see them. Without a microphone `SilentInput` stands in (silence at
the pace of a device, so the session's clock goes on and typed questions are answered); without a
speaker `SilentOutput` takes the replies at the pace they would be heard and drops them.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Callable

import numpy as np

from core.audio.devices import Microphone, Speaker
from core.audio.echo import EchoCanceller
from core.audio.playback import PlaybackQueue
from core.audio.resample import FrameSplitter, StreamResampler
from core.audio.format import FRAME, FRAME_MS, RATE

SPEAKER_AHEAD_MS = 30  # audio kept queued at the speaker: enough against scheduling jitter
SETTLE_WINDOW = 50  # frames (0.5 s) of far-end sound over which the canceller's echo reduction is judged
SETTLED_DB = 15.0  # echo reduction at which the canceller has learned the new path
SETTLE_MAX_S = 8.0  # a hold ends by then however the canceller does (the user may be talking)
FAR_ACTIVE_RMS = 0.003  # a far frame quieter than this (-50 dBFS) says nothing about the echo
MIC_WAIT_S = 0.1  # the worker's longest wait for a frame, so it sees a stop or a device change
ECHO_TAIL_S = 0.3  # the echo reaches the microphone up to this long after the sound was played
RELEARN_REPEAT_FRAMES = 10  # while the canceller relearns, barge-in is held again every 100 ms


class EchoSettling:
    """After a device change: is the canceller cancelling again? Its echo reduction (microphone
    energy over cleaned energy) over the last half second of frames in which the speaker played.
    `active` until that reaches SETTLED_DB, or SETTLE_MAX_S have passed."""

    def __init__(self) -> None:
        self._since: float | None = None
        self._near: collections.deque[float] = collections.deque(maxlen=SETTLE_WINDOW)
        self._clean: collections.deque[float] = collections.deque(maxlen=SETTLE_WINDOW)
        self.reduction_db: float | None = None

    def start(self, now: float) -> None:
        self._since, self.reduction_db = now, None
        self._near.clear()
        self._clean.clear()

    @property
    def active(self) -> bool:
        return self._since is not None

    def push(self, near: np.ndarray, clean: np.ndarray, far_active: bool, now: float) -> None:
        """One microphone frame and its cleaned version; `far_active`: the speaker was playing."""
        if self._since is None:
            return
        if far_active:
            self._near.append(float(np.mean(near**2)))
            self._clean.append(float(np.mean(clean**2)))
            if len(self._near) == SETTLE_WINDOW:
                self.reduction_db = 10 * np.log10((sum(self._near) + 1e-12) / (sum(self._clean) + 1e-12))
        settled = self.reduction_db is not None and self.reduction_db >= SETTLED_DB
        if settled or now - self._since > SETTLE_MAX_S:
            self._since = None


class SilentInput:
    """A microphone that is not there: silence at 16 kHz, delivered as fast as a device would."""

    device = None
    rate = RATE
    latency = 0.0
    overruns = 0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._started = clock()
        self._taken = 0

    def start(self) -> "SilentInput":
        self._started, self._taken = self._clock(), 0
        return self

    def stop(self) -> None:
        pass

    @property
    def available(self) -> int:
        return int((self._clock() - self._started) * self.rate) - self._taken

    def wait(self, n: int, timeout: float) -> bool:
        short = n - self.available
        if short > 0:
            time.sleep(min(timeout, short / self.rate))
        return self.available >= n

    def read(self, n: int) -> np.ndarray:
        n = max(0, min(n, self.available))
        self._taken += n
        return np.zeros(n, np.float32)


class SilentOutput:
    """A speaker that is not there: takes audio in real time and drops it, so a reply ends when
    it would have been heard and its text appears as it would have been spoken."""

    device = None
    latency = 0.0
    underruns = 0

    def __init__(self, rate: int = 48000, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._started = clock()
        self._written = 0

    def start(self) -> "SilentOutput":
        self._started, self._written = self._clock(), 0
        return self

    def stop(self) -> None:
        pass

    def _played(self) -> int:
        return int((self._clock() - self._started) * self.rate)

    @property
    def queued(self) -> int:
        return max(0, self._written - self._played())

    def write(self, samples: np.ndarray) -> int:
        self._written = max(self._written, self._played()) + len(samples)
        return len(samples)

    def flush(self) -> None:
        self._written = self._played()

    def finish_audio(self) -> None:
        pass


class LiveAudio:
    def __init__(
        self,
        playback: PlaybackQueue,
        mic: Microphone | SilentInput,
        speaker: Speaker | SilentOutput,
        echo: EchoCanceller | None,
    ) -> None:
        self.playback = playback
        self.mic = mic
        self.speaker = speaker
        self.echo = echo
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.frames = 0
        self.worker_lag_max = 0.0  # seconds the worker ever fell behind the microphone
        self.settling = EchoSettling()
        self.muted = False  # read by the worker each pass; set from any thread

    def start(
        self,
        feed: Callable[[np.ndarray, float, np.ndarray], None],
        on_echo_path_change: Callable[[], None] | None = None,
        started: bool = False,
    ) -> "LiveAudio":
        """`on_echo_path_change` is called when a device is replaced, and when the speaker first
        plays (a new canceller has never heard the room either), and again every 100 ms
        until the canceller has learned the new echo path (see EchoSettling): meanwhile its
        leftovers must not count as the user's speech. `started`: the devices are running already."""
        self._on_path_change = on_echo_path_change or (lambda: None)
        if not started:
            self.mic.start()
            self.speaker.start()
        self._thread = threading.Thread(target=self._run, args=(feed,), name="audio-worker", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.mic.stop()
        self.speaker.stop()

    def _relearn(self, now: float) -> None:
        """The echo path is new to the canceller: hold barge-in until it has learned it."""
        self._on_path_change()
        if self.echo is not None:
            self.settling.start(now)

    def _run(self, feed: Callable[[np.ndarray, float, np.ndarray], None]) -> None:
        mic_rate = speaker_rate = 0
        devices = (self.mic.device, self.speaker.device)
        far_loud_at = -1.0  # when the speaker last played something audible
        unheard = self.echo is not None  # the canceller has not heard the speaker yet
        while not self._stop.is_set():
            if (self.mic.device, self.speaker.device) != devices:
                devices = (self.mic.device, self.speaker.device)
                self._relearn(time.perf_counter())
            if self.mic.rate != mic_rate:  # first pass, or the microphone fell back to another device
                mic_rate = self.mic.rate
                mic_to_16k, mic_frames = StreamResampler(mic_rate, RATE), FrameSplitter(FRAME)
            if self.speaker.rate != speaker_rate:
                speaker_rate = self.speaker.rate
                to_speaker = StreamResampler(self.playback.device_rate, speaker_rate)
                far_to_16k, far_frames = StreamResampler(self.playback.device_rate, RATE), FrameSplitter(FRAME)
            block = mic_rate * FRAME_MS // 1000
            if not self.mic.wait(block, timeout=MIC_WAIT_S):
                continue
            captured = self.mic.read(self.mic.available)
            if self.muted:  # a hard mute: nothing the microphone heard goes any further
                captured = np.zeros_like(captured)
            now = time.perf_counter()
            self.worker_lag_max = max(self.worker_lag_max, len(captured) / mic_rate - FRAME_MS / 1000)
            # Top the speaker up: what goes out now is the far end the microphone will hear.
            ahead = speaker_rate * SPEAKER_AHEAD_MS // 1000
            while self.speaker.queued < ahead:
                out = self.playback.read(self.playback.device_rate * FRAME_MS // 1000)
                self.speaker.write(to_speaker.process(out))
                if np.sqrt(np.mean(out**2)) >= FAR_ACTIVE_RMS:
                    far_loud_at = time.perf_counter()
                    if unheard:
                        # The first sound: the canceller learns the path only now, so it is
                        # held to the same test as after a device change (else its leftovers
                        # can cut the first reply off as a barge-in).
                        unheard = False
                        self._relearn(far_loud_at)
                if self.echo is not None:
                    for far in far_frames.push(far_to_16k.process(out)):
                        self.echo.render(far)
            if self.echo is not None:
                delay = self.speaker.latency + self.mic.latency + self.speaker.queued / speaker_rate
                self.echo.set_delay_ms(int(delay * 1000))
            for frame in mic_frames.push(mic_to_16k.process(captured)):
                self.frames += 1
                if self.echo is None:
                    feed(frame, now, frame)
                else:
                    clean = self.echo.capture_both(frame)
                    feed(clean.suppressed, now, clean.linear)
                    if self.settling.active:
                        self.settling.push(frame, clean.suppressed, now - far_loud_at < ECHO_TAIL_S, now)
                        if self.settling.active and self.frames % RELEARN_REPEAT_FRAMES == 0:
                            self._on_path_change()
