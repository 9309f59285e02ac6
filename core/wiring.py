"""A conversation: the models, the session and an audio worker wired together, on real devices
(the desktop app, `voice-companion listen`) or in a simulated room (tests, screenshots, demos),
with the same interface so whoever drives it cannot tell the difference."""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

import numpy as np

from core.audio.devices import DeviceError, SystemDevices
from core.audio.echo import EchoCanceller
from core.audio.device_worker import LiveAudio, SilentInput, SilentOutput
from core.audio.levels import LevelReporter
from core.audio.playback import PlaybackQueue
from core.audio.room import RoomConfig
from core.audio.format import FRAME
from core.audio.simulated import SimulatedRoomLoop, VoiceTrack
from core.audio.vad import SileroVad
from core.events import CoreEvent, Mode, Notice
from core.session import Judge, Session
from core.turns import TurnConfig
from models.engine import Engine, Style

log = logging.getLogger(__name__)
RELEARN_SECONDS = 2.0  # barge-in stays held this long after LiveAudio last says the canceller is relearning


def _session(
    engine: Engine,
    vad: SileroVad,
    playback: PlaybackQueue,
    on_event: Callable[[CoreEvent], None],
    config: TurnConfig,
    style: Style,
    mode: Mode,
    echo_cancellation: bool,
    judge: Judge | None,
) -> Session:
    """The session of either conversation. Without echo cancellation it would hear its own
    replies, so it listens only while silent (not duplex)."""
    return Session(
        engine, vad, playback, config, style, on_event=on_event, mode=mode, duplex=echo_cancellation, judge=judge
    )


class LiveConversation:
    """On real devices. A microphone or speaker that cannot be found or opened does not stop it:
    `SilentInput` / `SilentOutput` stand in, `missing` says what is missing and why, and typed
    questions are still answered (aloud when there is a speaker, in text always)."""

    def __init__(
        self,
        engine: Engine,
        vad: SileroVad,
        on_event: Callable[[CoreEvent], None],
        input_device: str | None = None,
        output_device: str | None = None,
        config: TurnConfig = TurnConfig(),
        style: Style = Style(),
        mode: Mode = Mode.ALWAYS_LISTENING,
        echo_cancellation: bool = True,
        noise_suppression: bool = True,
        high_pass_filter: bool = True,
        gain_control: bool = False,
        judge: Judge | None = None,
        devices: SystemDevices | None = None,
    ) -> None:
        def notice(message: str) -> None:  # device trouble reaches the user like any other event
            on_event(Notice("warning", message))

        devices = devices or SystemDevices()
        self.missing: dict[str, str] = {}  # "microphone" / "speaker" -> why it is missing
        self.mic = self._device(lambda: devices.microphone(input_device, notice), SilentInput, "microphone")
        self.speaker = self._device(lambda: devices.speaker(output_device, notice), SilentOutput, "speaker")
        self.playback = PlaybackQueue(self.speaker.rate)
        switches = (echo_cancellation, noise_suppression, high_pass_filter, gain_control)
        echo = (
            EchoCanceller(
                echo_cancellation=echo_cancellation,
                noise_suppression=noise_suppression,
                high_pass_filter=high_pass_filter,
                gain_control=gain_control,
            )
            if any(switches)
            else None
        )
        self.session = _session(engine, vad, self.playback, on_event, config, style, mode, echo_cancellation, judge)
        self.audio = LiveAudio(self.playback, self.mic, self.speaker, echo)
        self.meter = LevelReporter(self.playback, on_event)

    def _device(self, open_device: Callable[[], Any], stand_in: Callable[[], Any], label: str) -> Any:
        try:
            return open_device()
        except DeviceError as exc:
            log.warning("no %s", label, exc_info=True)
            self.missing[label] = str(exc)
            return stand_in()

    def _started(self, device: Any, stand_in: Callable[[], Any], label: str) -> Any:
        """`device` started; one that does not open is replaced by its stand-in, started."""
        try:
            return device.start()
        except DeviceError as exc:
            log.warning("the %s did not open", label, exc_info=True)
            self.missing[label] = str(exc)
            return stand_in().start()

    def start(self) -> "LiveConversation":
        self.mic = self.audio.mic = self._started(self.mic, SilentInput, "microphone")
        rate = self.speaker.rate  # the playback queue is made for it; a stand-in keeps it
        self.speaker = self.audio.speaker = self._started(self.speaker, lambda: SilentOutput(rate=rate), "speaker")
        self.audio.start(
            self.meter.wrap(self.session.feed),
            started=True,
            on_echo_path_change=lambda: self.session.hold_barge_in(RELEARN_SECONDS),
        )
        return self

    def set_muted(self, muted: bool) -> None:
        self.audio.muted = muted

    @property
    def microphone_name(self) -> str | None:
        return self.mic.device.name if self.mic.device is not None else None

    @property
    def speaker_name(self) -> str | None:
        return self.speaker.device.name if self.speaker.device is not None else None

    def stop(self) -> None:
        self.session.close()
        self.audio.stop()

    @property
    def underruns(self) -> int:
        return self.speaker.underruns + self.playback.underruns

    @property
    def overruns(self) -> int:
        return self.mic.overruns


class SimulatedConversation:
    """The same conversation with a simulated laptop (speaker echo into the microphone, cancelled
    like on real devices) instead of devices; `speak(audio)` is the user talking into the room."""

    def __init__(
        self,
        engine: Engine,
        vad: SileroVad,
        on_event: Callable[[CoreEvent], None],
        config: TurnConfig = TurnConfig(),
        style: Style = Style(),
        mode: Mode = Mode.ALWAYS_LISTENING,
        echo_cancellation: bool = True,
        noise_suppression: bool = True,
        high_pass_filter: bool = True,
        gain_control: bool = False,
        room: RoomConfig | None = RoomConfig(),
        device_rate: int = 48000,
        judge: Judge | None = None,
    ) -> None:
        self.playback = PlaybackQueue(device_rate)
        echo = EchoCanceller(
            echo_cancellation=echo_cancellation,
            noise_suppression=noise_suppression,
            high_pass_filter=high_pass_filter,
            gain_control=gain_control,
        )
        vad.reset()
        self.session = _session(engine, vad, self.playback, on_event, config, style, mode, echo_cancellation, judge)
        self.loop = SimulatedRoomLoop(self.playback, room, echo)
        self.meter = LevelReporter(self.playback, on_event)
        self.track = VoiceTrack()
        self._thread: threading.Thread | None = None

    def start(self) -> "SimulatedConversation":
        feed = self.meter.wrap(self.session.feed)
        self._thread = threading.Thread(
            target=self.loop.run,
            args=(feed, self.track, lambda: False, 24 * 3600.0),
            name="simulated-audio",
            daemon=True,
        )
        self._thread.start()
        return self

    missing: dict[str, str] = {}  # the simulated room has both devices
    microphone_name = "simulated microphone"
    speaker_name = "simulated speaker"

    def set_muted(self, muted: bool) -> None:
        self.loop.muted = muted

    def speak(self, audio: np.ndarray, after_ms: int = 20) -> float:
        """The user says `audio` (16 kHz) starting `after_ms` from now; returns its length in seconds."""
        self.track.add(audio, (self.loop.ticks + after_ms // 10) * FRAME)
        return len(audio) / 16000

    def stop(self) -> None:
        self.session.close()
        self.loop.stop()
        if self._thread is not None:
            self._thread.join()

    @property
    def underruns(self) -> int:
        return self.playback.underruns

    @property
    def overruns(self) -> int:
        return 0
