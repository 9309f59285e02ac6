"""Events the core sends to whoever shows the conversation (the GUI, the CLI, tests), and the
words of its protocol: states, modes and how a reply ended."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class State(StrEnum):
    IDLE = "idle"  # no conversation yet (models loading)
    LISTENING = "listening"
    HEARING = "hearing"  # the user is speaking
    THINKING = "thinking"  # the turn ended; the reply is on its way
    SPEAKING = "speaking"


class Mode(StrEnum):
    ALWAYS_LISTENING = "always-listening"
    PUSH_TO_TALK = "push-to-talk"


class ReplyEnd(StrEnum):
    """How a reply the user could hear ended."""

    COMPLETE = "complete"
    INTERRUPTED = "interrupted"  # cut short (barge-in, stop, push-to-talk): kept as far as heard
    DISCARDED = "discarded"  # never counted: the turn it answered went on
    EMPTY = "empty"  # nothing to answer
    CANCELLED = "cancelled"  # the engine stopped it by itself
    ERROR = "error"  # `ReplyFinished.detail` says what failed


@dataclass(frozen=True)
class StateChanged:
    state: State


@dataclass(frozen=True)
class UserTranscript:
    text: str


@dataclass(frozen=True)
class AssistantText:
    delta: str  # text of the clause about to be spoken


@dataclass(frozen=True)
class TurnLatency:
    """Per-turn timings in milliseconds. `response` runs from the last voiced sample of the user's
    turn to the first reply sample handed to the output device."""

    end_of_turn: float
    response: float
    stages: dict[str, float] = field(default_factory=dict)  # asr, llm_first_token, tts_first_audio, ...
    prompt_tokens: dict[str, int] = field(default_factory=dict)  # cached, new: the chat model's prompt


@dataclass(frozen=True)
class ReplyFinished:
    text: str  # what was spoken (interrupted: what was heard)
    reason: ReplyEnd
    detail: str = ""  # ERROR: the plain message
    transcript: str = ""  # the user's words it answered, as reported by UserTranscript ("" if never)


@dataclass(frozen=True)
class Notice:
    level: str  # "info", "warning", "error"
    message: str


@dataclass(frozen=True)
class Levels:
    """Meter readings, a few times a second: dBFS peaks of what the microphone heard (after echo
    cancellation) and of what went to the speaker."""

    input_db: float
    output_db: float


@dataclass(frozen=True)
class EngineReady:
    name: str  # "cascade" or "omni"
    capabilities: object  # models.engine.Capabilities: what the interface may offer


@dataclass(frozen=True)
class HistoryCleared:
    """The conversation history was erased (the user's "Clear history" or "Forget everything"):
    the window empties its view."""


@dataclass(frozen=True)
class AudioStatus:
    """The conversation's devices and the microphone mute, sent whenever any of them changes."""

    microphone: str | None  # the device's name; None: there is none (typed questions still work)
    speaker: str | None  # None: replies are shown as text only
    muted: bool  # the microphone is muted: nothing it hears reaches the conversation


CoreEvent = (
    StateChanged
    | UserTranscript
    | AssistantText
    | TurnLatency
    | ReplyFinished
    | Notice
    | Levels
    | EngineReady
    | HistoryCleared
    | AudioStatus
)
