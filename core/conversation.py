"""A conversation: the models, the session and an audio worker wired together, on real devices
(the desktop app, `voice-companion listen`) or in a simulated room (tests, screenshots, demos),
with the same interface so whoever drives it cannot tell the difference."""
from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from core.audio.devices import Microphone, Speaker
from core.audio.echo import EchoCanceller
from core.audio.live import LiveAudio
from core.audio.meter import LevelMeter
from core.audio.playback import PlaybackQueue
from core.audio.room import RoomConfig
from core.audio.sim import FRAME, SimulatedRoomLoop, VoiceTrack
from core.audio.vad import SileroVad
from core.events import CoreEvent, Mode, Notice
from core.session import Session
from core.turns import TurnConfig
from models.engine import Engine, Style

RELEARN_SECONDS = 2.0  # barge-in stays held this long after LiveAudio last says the canceller is relearning


class LiveConversation:
    def __init__(self, engine: Engine, vad: SileroVad, on_event: Callable[[CoreEvent], None],
                 input_device: str | None = None, output_device: str | None = None,
                 config: TurnConfig = TurnConfig(), style: Style = Style(), mode: Mode = Mode.ALWAYS_LISTENING,
                 echo_cancellation: bool = True, noise_suppression: bool = True,
                 high_pass_filter: bool = True, gain_control: bool = False, judge=None) -> None:
        def notice(message: str) -> None:  # device trouble reaches the user like any other event
            on_event(Notice("warning", message))

        self.mic = Microphone(input_device, on_notice=notice)
        self.speaker = Speaker(output_device, on_notice=notice)
        self.playback = PlaybackQueue(self.speaker.rate)
        switches = (echo_cancellation, noise_suppression, high_pass_filter, gain_control)
        echo = EchoCanceller(echo_cancellation=echo_cancellation, noise_suppression=noise_suppression,
                             high_pass_filter=high_pass_filter, gain_control=gain_control) if any(switches) else None
        # Without echo cancellation it would hear itself: listen only while silent.
        self.session = Session(engine, vad, self.playback, config, style, on_event=on_event, mode=mode,
                               duplex=echo_cancellation, judge=judge)
        self.audio = LiveAudio(self.playback, self.mic, self.speaker, echo)
        self.meter = LevelMeter(self.playback, on_event)

    def start(self) -> "LiveConversation":
        self.audio.start(self.meter.wrap(self.session.feed),
                         on_echo_path_change=lambda: self.session.hold_barge_in(RELEARN_SECONDS))
        return self

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

    def __init__(self, engine: Engine, vad: SileroVad, on_event: Callable[[CoreEvent], None],
                 config: TurnConfig = TurnConfig(), style: Style = Style(), mode: Mode = Mode.ALWAYS_LISTENING,
                 echo_cancellation: bool = True, noise_suppression: bool = True,
                 high_pass_filter: bool = True, gain_control: bool = False,
                 room: RoomConfig | None = RoomConfig(), device_rate: int = 48000, judge=None) -> None:
        self.playback = PlaybackQueue(device_rate)
        echo = EchoCanceller(echo_cancellation=echo_cancellation, noise_suppression=noise_suppression,
                             high_pass_filter=high_pass_filter, gain_control=gain_control)
        vad.reset()
        self.session = Session(engine, vad, self.playback, config, style, on_event=on_event, mode=mode,
                               duplex=echo_cancellation, judge=judge)
        self.loop = SimulatedRoomLoop(self.playback, room, echo)
        self.meter = LevelMeter(self.playback, on_event)
        self.track = VoiceTrack()
        self._thread: threading.Thread | None = None

    def start(self) -> "SimulatedConversation":
        feed = self.meter.wrap(self.session.feed)
        self._thread = threading.Thread(
            target=self.loop.run, args=(feed, self.track, lambda: False, 24 * 3600.0),
            name="simulated-audio", daemon=True)
        self._thread.start()
        return self

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
