"""A live conversation on real devices: the models, the session and the audio worker wired
together. The desktop app and `voice-companion listen` both drive this."""
from __future__ import annotations

from typing import Callable

from core.audio.devices import Microphone, Speaker
from core.audio.echo import EchoCanceller
from core.audio.live import LiveAudio
from core.audio.playback import PlaybackQueue
from core.audio.vad import SileroVad
from core.events import CoreEvent, Notice
from core.session import ALWAYS_LISTENING, Session
from core.turns import TurnConfig
from models.engine import Engine, Style

RELEARN_SECONDS = 2.0  # the canceller's time to learn a new echo path well (measured ~2 s of far end)


class LiveConversation:
    def __init__(self, engine: Engine, vad: SileroVad, on_event: Callable[[CoreEvent], None],
                 input_device: str | None = None, output_device: str | None = None,
                 config: TurnConfig = TurnConfig(), style: Style = Style(), mode: str = ALWAYS_LISTENING,
                 echo_cancellation: bool = True, noise_suppression: bool = True,
                 high_pass_filter: bool = True, gain_control: bool = False) -> None:
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
                               duplex=echo_cancellation)
        self.audio = LiveAudio(self.playback, self.mic, self.speaker, echo)

    def start(self) -> "LiveConversation":
        self.audio.start(self.session.feed, on_echo_path_change=lambda: self.session.hold_barge_in(RELEARN_SECONDS))
        return self

    def stop(self) -> None:
        self.session.stop()
        self.audio.stop()

    @property
    def underruns(self) -> int:
        return self.speaker.underruns + self.playback.underruns

    @property
    def overruns(self) -> int:
        return self.mic.overruns
