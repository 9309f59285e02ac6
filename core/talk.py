"""One whole spoken turn through the session, with a file as the user's voice in a simulated
room: the path behind `voice-companion talk` and the latency benchmark."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from core.audio.echo import EchoCanceller
from core.audio.playback import PlaybackQueue
from core.audio.room import RoomConfig
from core.audio.sim import SimulatedRoomLoop
from core.audio.vad import SileroVad
from core.events import CoreEvent, ReplyFinished, TurnLatency, UserTranscript
from core.session import Session
from core.turns import TurnConfig
from models.engine import Engine, Message, Style

DEVICE_RATE = 48000


@dataclass
class TurnResult:
    transcript: str
    reply_text: str
    reason: str
    reply_audio: np.ndarray  # what the speaker played, at `rate`
    rate: int
    latency: TurnLatency | None
    history: list[Message] = field(default_factory=list)
    underruns: int = 0


def talk_once(engine: Engine, vad: SileroVad, voice: np.ndarray, config: TurnConfig = TurnConfig(),
              style: Style = Style(), history: list[Message] | None = None,
              timeout: float = 120.0, on_event=None, room: RoomConfig | None = RoomConfig(),
              voice_profiles: tuple | None = None) -> TurnResult:
    """Play `voice` (16 kHz mono) into a session through a simulated room, in real time, as a
    live microphone would, with the speaker's echo cancelled; collect the spoken reply."""
    finished = threading.Event()
    seen: dict[str, object] = {}

    def listen(event: CoreEvent) -> None:
        if isinstance(event, UserTranscript):
            seen["transcript"] = event.text
        elif isinstance(event, TurnLatency):
            seen["latency"] = event
        elif isinstance(event, ReplyFinished):
            seen["finished"] = event
            finished.set()
        if on_event is not None:
            on_event(event)

    playback = PlaybackQueue(DEVICE_RATE)
    echo = EchoCanceller() if room is not None else None
    loop = SimulatedRoomLoop(playback, room, echo)
    vad.reset()
    session = Session(engine, vad, playback, config, style, on_event=listen, duplex=True)
    session.voice_profiles = voice_profiles
    if history:
        session.history = list(history)
    try:
        loop.run(session.feed, voice, until=finished.is_set, max_seconds=len(voice) / 16000 + timeout)
    finally:
        if not finished.is_set():
            session.stop()
    played = loop.played_audio()
    voiced = np.flatnonzero(played)
    reply_audio = played[voiced[0] : voiced[-1] + 1] if len(voiced) else played[:0]
    done: ReplyFinished | None = seen.get("finished")  # type: ignore[assignment]
    return TurnResult(
        transcript=str(seen.get("transcript", "")),
        reply_text=done.text if done else "",
        reason=done.reason if done else "timeout: no end of turn was heard",
        reply_audio=reply_audio,
        rate=DEVICE_RATE,
        latency=seen.get("latency"),  # type: ignore[arg-type]
        history=list(session.history),
        underruns=playback.underruns,
    )
