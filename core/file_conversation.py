"""A whole spoken conversation through the session, with a file as the user's side in a simulated
room: the path behind `voice-companion talk` and the latency benchmark.

The file plays into the room in real time as a microphone would deliver it. When the session
takes a turn (it starts thinking), the file goes on for as long as speech would still continue
that turn (a person who only paused goes on talking), then waits, as a person waits for the
answer; once the reply has ended (complete, interrupted or empty) the file goes on. So every turn the session
hears in the file is answered, in order, and the replies and the user's voice lie on one timeline.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import numpy as np
import soxr

from core.audio.echo import EchoCanceller
from core.audio.playback import PlaybackQueue
from core.audio.room import RoomConfig
from core.audio.simulated import SimulatedRoomLoop
from core.audio.vad import SileroVad
from core.audio.turn_end import load_turn_judge
from core.events import (
    AssistantText,
    CoreEvent,
    ReplyEnd,
    ReplyFinished,
    State,
    StateChanged,
    TurnLatency,
    UserTranscript,
)
from core.session import Judge, Session
from core.style.chain import VoiceProfiles
from core.turns import TurnConfig
from models.engine import Engine, Message, Style
from core.audio.format import FRAME, FRAME_MS, RATE

DEVICE_RATE = 48000


@dataclass
class TurnResult:
    transcript: str
    reply_text: str
    reason: str  # a ReplyEnd, or "timeout: ..." when no reply came
    latency: TurnLatency | None
    user_at: float  # seconds into the conversation when the turn was taken (its end)
    reply_audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # at DEVICE_RATE
    rate: int = DEVICE_RATE
    history: list[Message] = field(default_factory=list)
    underruns: int = 0


@dataclass
class Conversation:
    turns: list[TurnResult]
    timeline: np.ndarray  # what the room heard: the user's voice and the replies, 16 kHz
    replies: np.ndarray  # the replies alone on the same timeline, 16 kHz
    history: list[Message]
    underruns: int
    prepared: dict[str, int]  # replies prepared at pauses: prepared, used, thrown_away
    # Where in `voice` the session took a turn, seconds, each time (a turn it reopened counts again).
    taken_at: list[float]
    rate: int = RATE

    @property
    def taken(self) -> int:
        return len(self.taken_at)


class _UserSide:
    """The file as the user speaks it: one frame per tick, held while a reply is pending."""

    end = 0  # for SimulatedRoomLoop: the loop's own end test is never used

    def __init__(self, voice: np.ndarray) -> None:
        self.voice = voice
        self.cursor = 0
        self.waiting = False  # the session took a turn: wait for its reply ...
        self.grace = 0  # ... after this many more frames
        self.played: list[np.ndarray] = []

    def wait(self, grace_frames: int) -> None:
        if not self.waiting:
            self.waiting, self.grace = True, grace_frames

    @property
    def over(self) -> bool:
        return self.cursor >= len(self.voice)

    def frame(self, _start: int, n: int = FRAME) -> np.ndarray:
        out = np.zeros(n, np.float32)
        if self.waiting and self.grace > 0:
            self.grace -= 1
        if not self.waiting or self.grace > 0:
            piece = self.voice[self.cursor : self.cursor + n]
            out[: len(piece)] = piece
            self.cursor += n
        self.played.append(out)
        return out


def talk(
    engine: Engine,
    vad: SileroVad,
    voice: np.ndarray,
    config: TurnConfig = TurnConfig(),
    style: Style = Style(),
    history: list[Message] | None = None,
    timeout: float = 120.0,
    on_event: Callable[[CoreEvent], None] | None = None,
    room: RoomConfig | None = RoomConfig(),
    voice_profiles: VoiceProfiles | None = None,
    max_turns: int | None = None,
    judge: Judge | Literal[False] | None = None,
) -> Conversation:
    """Play `voice` (16 kHz mono) into a session through a simulated room, in real time, with the
    speaker's echo cancelled, answering every turn; `timeout` bounds the wait for each reply.
    `judge`: whether a pause ends the turn (default: Smart Turn; False: silence alone)."""
    lock = threading.Lock()
    turns: list[TurnResult] = []
    taken_at: list[float] = []
    user = _UserSide(voice)
    pending: dict[str, Any] = {}  # the turn being answered: transcript, text, latency
    ticks = {"quiet": 0, "waiting": 0}

    def listen(event: CoreEvent) -> None:
        with lock:
            if isinstance(event, StateChanged) and event.state == State.THINKING:
                taken_at.append(user.cursor / RATE)
                user.wait(config.reopen_ms // FRAME_MS)
                pending.setdefault("at", len(user.played) * FRAME / RATE)
            elif isinstance(event, UserTranscript):
                pending["transcript"] = event.text
            elif isinstance(event, AssistantText):
                pending["text"] = pending.get("text", "") + event.delta
            elif isinstance(event, TurnLatency) and turns:  # follows its reply's ReplyFinished
                turns[-1].latency = event
            elif isinstance(event, ReplyFinished):
                if event.reason != ReplyEnd.DISCARDED:  # a reopened turn is answered again
                    turns.append(
                        TurnResult(
                            pending.get("transcript", ""),
                            event.text or "",
                            event.reason,
                            None,
                            pending.get("at", 0.0),
                            history=list(session.history),
                        )
                    )
                pending.clear()
                user.waiting = False
        if on_event is not None:
            on_event(event)

    def done() -> bool:
        with lock:
            # A complete reply's latency record follows its ReplyFinished: wait for it too.
            settled = [t for t in turns if t.latency is not None or t.reason != ReplyEnd.COMPLETE]
            if max_turns is not None and len(settled) >= max_turns:
                return True
            quiet = user.over and not user.waiting and session.state == State.LISTENING
            ticks["quiet"] = ticks["quiet"] + 1 if quiet else 0
            ticks["waiting"] = ticks["waiting"] + 1 if user.waiting else 0
            if ticks["waiting"] * FRAME / RATE > timeout:
                turns.append(
                    TurnResult(
                        pending.get("transcript", ""), "", "timeout: no reply came", None, pending.get("at", 0.0)
                    )
                )
                return True
            # The file is over and nothing is going on: one more end-of-turn's silence and done.
            return ticks["quiet"] * 10 >= config.end_of_turn_ms + 500

    playback = PlaybackQueue(DEVICE_RATE)
    echo = EchoCanceller() if room is not None else None
    loop = SimulatedRoomLoop(playback, room, echo)
    vad.reset()
    session = Session(
        engine,
        vad,
        playback,
        config,
        style,
        on_event=listen,
        duplex=True,
        judge=load_turn_judge() if judge is None else judge or None,
    )
    session.voice_profiles = voice_profiles
    if history:
        session.history = list(history)
    limit = len(voice) / RATE + timeout * (1 + len(voice) / RATE / 2)
    try:
        loop.run(session.feed, user, until=done, max_seconds=limit)
    finally:
        session.close()
    if not turns and not user.over:
        turns.append(TurnResult("", "", "timeout: no end of turn was heard", None, 0.0))
    played = loop.played_audio()
    _cut_replies(turns, played, config)
    replies = soxr.resample(played, DEVICE_RATE, RATE).astype(np.float32) if len(played) else played
    heard = np.concatenate(user.played) if user.played else np.zeros(0, np.float32)
    n = max(len(replies), len(heard))
    timeline = np.zeros(n, np.float32)
    timeline[: len(heard)] += heard
    timeline[: len(replies)] += replies
    for turn in turns:
        turn.underruns = playback.underruns
    return Conversation(
        turns,
        np.clip(timeline, -1, 1),
        replies,
        list(session.history),
        playback.underruns,
        dict(session.prepared),
        taken_at,
    )


def _cut_replies(turns: list[TurnResult], played: np.ndarray, config: TurnConfig) -> None:
    """Each turn's reply audio: what the speaker played after the turn was taken and before the
    next one was."""
    bounds = [int(t.user_at * DEVICE_RATE) for t in turns] + [len(played)]
    for turn, (start, end) in zip(turns, zip(bounds, bounds[1:])):
        part = played[start:end]
        voiced = np.flatnonzero(part)
        turn.reply_audio = part[voiced[0] : voiced[-1] + 1] if len(voiced) else part[:0]


def talk_once(
    engine: Engine,
    vad: SileroVad,
    voice: np.ndarray,
    config: TurnConfig = TurnConfig(),
    style: Style = Style(),
    history: list[Message] | None = None,
    timeout: float = 120.0,
    on_event: Callable[[CoreEvent], None] | None = None,
    room: RoomConfig | None = RoomConfig(),
    voice_profiles: VoiceProfiles | None = None,
    judge: Judge | Literal[False] | None = None,
) -> TurnResult:
    """The first turn of `voice` and its spoken reply."""
    conversation = talk(
        engine, vad, voice, config, style, history, timeout, on_event, room, voice_profiles, max_turns=1, judge=judge
    )
    return (
        conversation.turns[0]
        if conversation.turns
        else TurnResult("", "", "timeout: no end of turn was heard", None, 0.0, history=conversation.history)
    )
