"""The contract between the core and every engine: a user's turn in, a stream of small events out.

An engine turns one user turn into a streamed reply. It never touches audio devices or the GUI:
the core feeds it a `UserTurn` and plays what it yields. `cancel()` may be called from any thread;
the engine then stops within one step of its slowest stage and its iterator ends with
`ReplyDone("cancelled")`, leaving the engine ready for the next turn.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol

import numpy as np


@dataclass(frozen=True)
class Message:
    """One earlier exchange line. The core owns the history; engines only read it."""

    role: str  # "user" or "assistant"
    text: str
    interrupted: bool = False  # an assistant reply cut short: text is what was actually heard


@dataclass(frozen=True)
class UserTurn:
    """What the user said: 16 kHz mono float32 audio, or typed text (then audio is empty)."""

    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    text: str | None = None
    history: tuple[Message, ...] = ()
    rate: int = 16000
    verbatim: str | None = None  # no question: say exactly this (a greeting); not part of the history


@dataclass(frozen=True)
class Style:
    """How the reply should sound. An engine honours what it declares in its capabilities and
    ignores the rest; the core applies the remainder to the audio (pitch, energy, voice matching,
    and speed for engines without a native speed control)."""

    speed: float = 1.0  # 0.5-2.0, pitch kept
    pitch_semitones: float = 0.0  # -12..+12, duration kept
    pitch_range: float = 1.0  # scale of the intonation around the median pitch
    energy_db: float = 0.0  # loudness change
    expressiveness: float = 1.0  # scales the voice model's own variability (Piper's noise scales)
    instruction: str | None = None  # wording/emotion instruction for engines that take one
    persona: str | None = None  # who the companion is (added to the system prompt)
    voice_reference: str | None = None  # path of a reference clip, for engines that condition on one


@dataclass(frozen=True)
class Capabilities:
    """What an engine really does, so the interface can show only what is real."""

    streaming_text: bool
    streaming_audio: bool
    instruction_styles: bool  # takes a style as an instruction (wording, emotion)
    voice_matching: bool  # conditions on a reference clip itself
    native_speed: bool  # has its own speed control (post-processing makes up only `speed_left`)


# ---- events -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TranscriptFinal:
    text: str


@dataclass(frozen=True)
class ReplyText:
    """A piece of the reply's text, emitted when it is about to be spoken."""

    delta: str


@dataclass(frozen=True)
class ReplyAudio:
    samples: np.ndarray  # float32 mono in [-1, 1]
    rate: int


@dataclass(frozen=True)
class StageTime:
    """How long one stage took this turn (seconds), for the per-turn latency record."""

    stage: str  # "asr", "llm_first_token", "tts_first_audio", ...
    seconds: float


@dataclass(frozen=True)
class ReplyDone:
    reason: str  # "complete", "cancelled", "empty", "error: ..."


EngineEvent = TranscriptFinal | ReplyText | ReplyAudio | StageTime | ReplyDone


class CancelToken:
    """A flag one thread sets and the workers of a reply check between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        return self._event.wait(seconds)


class Cancelled(Exception):
    """Raised from inside a long computation of a reply (an encoder pass, a prefill) whose
    CancelToken was cancelled, so its worker is free for the next reply within a block's time."""


def stop_if_cancelled(cancelled: Callable[[], bool] | None) -> None:
    """Raise Cancelled when `cancelled` (may be None: never) says so; asked between blocks."""
    if cancelled is not None and cancelled():
        raise Cancelled()


class Engine(Protocol):
    capabilities: Capabilities
    output_rate: int

    def respond(self, turn: UserTurn, style: Style) -> Iterator[EngineEvent]: ...

    def cancel(self) -> None: ...

    def speed_left(self, speed: float) -> float:
        """Only asked of engines with native_speed: the part of this speed their own control
        cannot reach (1.0: none), which the core's style processing makes up."""
        ...
