"""The contract between the core and every engine: a user's turn in, a stream of small events out.

An engine turns one user turn into a streamed reply. It never touches audio devices or the GUI:
the core feeds it a `UserTurn` with the reply's own `CancelToken` and plays what it yields. A
cancelled token ends that reply's iterator at once with `ReplyDone(CANCELLED)`; its workers stop
within one step of their slowest stage. Cancelling one reply can never touch another: there is no
engine-wide cancel.

Each engine's models have one owner at a time (`ModelLease`): `respond` waits until the previous
reply's workers have let go before it starts its own, so two replies never decode in one model.
`single_threaded` checks it: a model entered by a second thread while another is inside raises.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Callable, Iterator, Protocol, TypeVar, cast

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    """One earlier exchange line. The core owns the history; engines only read it."""

    role: str  # "user" or "assistant"
    text: str
    interrupted: bool = False  # an assistant reply cut short: text is what was actually heard


SPEECH_RATE = 16000  # samples per second of a user turn's audio: what every engine is handed


@dataclass(frozen=True)
class UserTurn:
    """What the user said: 16 kHz mono float32 audio, or typed text (then audio is empty)."""

    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    text: str | None = None
    history: tuple[Message, ...] = ()
    rate: int = SPEECH_RATE
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
class PromptTokens:
    """How the reply's prompt met the model's cache: tokens already there, tokens evaluated."""

    cached: int
    new: int


class EndReason(StrEnum):
    """How an engine's reply ended."""

    COMPLETE = "complete"  # said all it had to say
    CANCELLED = "cancelled"  # its token was cancelled
    EMPTY = "empty"  # nothing to answer (silence) or nothing said
    ERROR = "error"  # a model failed; `ReplyDone.detail` says how


@dataclass(frozen=True)
class ReplyDone:
    reason: EndReason
    detail: str = ""  # for ERROR: a plain message for the user


EngineEvent = TranscriptFinal | ReplyText | ReplyAudio | StageTime | PromptTokens | ReplyDone


class CancelToken:
    """Made per reply; one thread cancels it, that reply's workers check it between steps."""

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


# ---- ownership ----------------------------------------------------------------------------

POLL_S = 0.005  # how often a waiting relay or lease looks at its token


class ConcurrentUse(RuntimeError):
    """Two threads were inside one model at once: a bug in who owns it, never a user error."""


class _Guard:
    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._depth = 0

    def enter(self) -> None:
        me = threading.get_ident()
        with self._lock:
            if self._owner not in (None, me):
                raise ConcurrentUse(
                    f"{self.name}: entered by thread {threading.current_thread().name} while another thread is inside"
                )
            self._owner, self._depth = me, self._depth + 1

    def leave(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                self._owner = None


_guards_lock = threading.Lock()


def _guard_of(obj: object) -> _Guard:
    guard: _Guard | None = obj.__dict__.get("_single_thread_guard")
    if guard is None:
        with _guards_lock:
            guard = obj.__dict__.setdefault("_single_thread_guard", _Guard(type(obj).__name__))
    return guard


_Method = TypeVar("_Method", bound=Callable[..., Any])


def single_threaded(method: _Method) -> _Method:
    """Marks a method of a model wrapper that must never run in two threads at once (a llama.cpp
    context, a recognizer, a voice): a second thread entering while one is inside raises
    ConcurrentUse. Re-entry from the same thread is fine. For a generator method the model
    counts as entered from the first item until the generator ends or is closed."""
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def generator(self: object, *args: Any, **kwargs: Any) -> Iterator[Any]:
            guard = _guard_of(self)
            guard.enter()
            try:
                yield from method(self, *args, **kwargs)
            finally:
                guard.leave()

        return cast(_Method, generator)

    @functools.wraps(method)
    def wrapper(self: object, *args: Any, **kwargs: Any) -> Any:
        guard = _guard_of(self)
        guard.enter()
        try:
            return method(self, *args, **kwargs)
        finally:
            guard.leave()

    return cast(_Method, wrapper)


class ModelLease:
    """Who may use an engine's models now: one reply's workers, or one other user (a warm-up, a
    voice measurement), or idle work that prepares the next reply (`start_idle`). Taken by
    `respond` before it starts its workers and given back by the last of them to finish, so a new
    reply starts only after the previous one's workers have let go. Idle work is the lowest
    priority: anyone who asks for the lease cancels it, and it ends within one of its steps."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle_lock = threading.Lock()
        self._idle: IdleWork | None = None  # the newest idle work, waiting for the lease, holding it or done

    def take(self, token: CancelToken) -> float | None:
        """Wait until the models are free (idle work is asked to stop); the seconds waited, or
        None if `token` was cancelled first (then the lease is not held)."""
        self._cancel_idle()
        return self._acquire(token)

    def _acquire(self, token: CancelToken) -> float | None:
        t0 = time.perf_counter()
        while not self._lock.acquire(timeout=POLL_S):
            if token.cancelled:
                return None
        return time.perf_counter() - t0

    def _cancel_idle(self) -> None:
        with self._idle_lock:
            if self._idle is not None:
                self._idle.token.cancel()

    def stop_idle(self, timeout: float = 0.0) -> None:
        """Cancel idle work, waiting or running, and wait up to `timeout` seconds for its thread
        to end (it ends within one of its steps)."""
        with self._idle_lock:
            idle = self._idle
        if idle is not None:
            idle.stop(timeout)

    def queue_idle(self, idle: IdleWork) -> None:
        """`idle` is now the idle work: an earlier one is dropped (only the newest is worth doing)."""
        with self._idle_lock:
            if self._idle is not None:
                self._idle.token.cancel()
            self._idle = idle

    def take_idle(self, idle: IdleWork) -> bool:
        """For idle work (queued first): wait for the lease behind everyone else; False if its
        token was cancelled first (by later idle work or anyone asking for the lease)."""
        if self._acquire(idle.token) is None:
            return False
        if idle.token.cancelled:  # someone asked while this thread was getting it
            self._lock.release()
            return False
        return True

    def give_back(self) -> None:
        self._lock.release()

    def __enter__(self) -> "ModelLease":
        self._cancel_idle()
        self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    @property
    def free(self) -> bool:
        if self._lock.acquire(blocking=False):
            self._lock.release()
            return True
        return False


class Workers:
    """The threads of one reply. The lease (already taken) goes back when the last one ends,
    however it ends; a worker that raises reports it as ReplyDone(ERROR) on `events`."""

    def __init__(
        self, lease: ModelLease, events: queue.Queue[EngineEvent], name: str, token: CancelToken | None = None
    ) -> None:
        self._lease, self._events, self._name = lease, events, name
        self._token = token
        self._left = 0
        self._lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def start(self, *targets: Callable[[], None]) -> None:
        self._left = len(targets)
        with _LIVE_LOCK:
            _LIVE.add(self)
        try:
            for i, target in enumerate(targets):
                label = getattr(getattr(target, "func", target), "__name__", str(i)).strip("_")
                thread = threading.Thread(target=self._run, args=(target,), daemon=True, name=f"{self._name}-{label}")
                self.threads.append(thread)
                thread.start()
        except BaseException:
            with self._lock:  # the ones that never started will not give it back
                self._left -= len(targets) - len(self.threads)
                last = self._left == 0
            if last:
                self._finished()
            raise

    def _run(self, target: Callable[[], None]) -> None:
        try:
            target()
        except Exception as exc:
            log.exception("engine worker %s failed", threading.current_thread().name)
            self._events.put(ReplyDone(EndReason.ERROR, str(exc) or type(exc).__name__))
        finally:
            with self._lock:
                self._left -= 1
                last = self._left == 0
            if last:
                self._finished()

    def _finished(self) -> None:
        with _LIVE_LOCK:
            _LIVE.discard(self)
        self._lease.give_back()

    def stop(self, timeout: float) -> None:
        """Cancel the reply and wait up to `timeout` seconds for its threads to end."""
        if self._token is not None:
            self._token.cancel()
        deadline = time.monotonic() + timeout
        for thread in list(self.threads):
            thread.join(max(0.0, deadline - time.monotonic()))


# Replies whose workers are running. Worker threads are daemons (a stuck model must not keep the
# process alive), but a daemon thread still inside llama.cpp or onnxruntime while the interpreter
# tears the models down crashes the process at exit; so at exit every live reply is cancelled
# and its threads are given a moment to leave the model (each stops within one step).
_LIVE: set[Workers | IdleWork] = set()
_LIVE_LOCK = threading.Lock()
EXIT_WAIT_S = 2.0


@atexit.register
def _stop_live_replies() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE)
    deadline = time.monotonic() + EXIT_WAIT_S
    for group in live:
        group.stop(max(0.0, deadline - time.monotonic()))


def relay(events: queue.Queue[EngineEvent], token: CancelToken) -> Iterator[EngineEvent]:
    """The caller's side of a reply: its workers' events, in order, until ReplyDone; a cancelled
    token ends it at once with ReplyDone(CANCELLED) whatever the workers are doing."""
    while True:
        if token.cancelled:
            yield ReplyDone(EndReason.CANCELLED)
            return
        try:
            event = events.get(timeout=POLL_S)
        except queue.Empty:
            continue
        if token.cancelled:
            continue
        yield event
        if isinstance(event, ReplyDone):
            return


def start_reply(
    lease: ModelLease, token: CancelToken, name: str, *workers: Callable[[queue.Queue[EngineEvent]], None]
) -> Iterator[EngineEvent]:
    """Everything `respond` does around an engine's own work: wait for the models (the wait is
    reported as StageTime("handover")), run `workers(events)` on threads of their own, and relay
    their events."""
    waited = lease.take(token)
    if waited is None:
        yield ReplyDone(EndReason.CANCELLED)
        return
    events: queue.Queue[EngineEvent] = queue.Queue()
    group = Workers(lease, events, name, token)
    group.start(*[functools.partial(work, events) for work in workers])
    yield StageTime("handover", waited)
    yield from relay(events, token)


@dataclass(eq=False)  # one object per job (kept in sets, compared by identity)
class IdleWork:
    """Idle work handed to `start_idle`: its token, its thread, and `done` once it has returned
    (or was dropped) and let go of the models."""

    token: CancelToken = field(default_factory=CancelToken)
    done: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def stop(self, timeout: float) -> None:
        self.token.cancel()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout)


def start_idle(lease: ModelLease, name: str, work: Callable[[CancelToken], None]) -> IdleWork:
    """Run `work(token)` on a thread of its own once the models are free, as idle work (see
    ModelLease): a reply that asks for the lease, or the next idle work, cancels the token, and
    `work` must then return within one of its steps."""
    idle = IdleWork()

    def run() -> None:
        try:
            if not lease.take_idle(idle):
                return
            with _LIVE_LOCK:
                _LIVE.add(idle)
            try:
                work(idle.token)
            except Exception:
                log.exception("idle work %s failed", name)
            finally:
                with _LIVE_LOCK:
                    _LIVE.discard(idle)
                lease.give_back()
        finally:
            idle.done.set()

    lease.queue_idle(idle)
    idle.thread = threading.Thread(target=run, daemon=True, name=name)
    idle.thread.start()
    return idle


class Engine(Protocol):
    capabilities: Capabilities
    output_rate: int
    lease: ModelLease

    def respond(self, turn: UserTurn, style: Style, token: CancelToken) -> Iterator[EngineEvent]: ...

    def prime(self, history: tuple[Message, ...], style: Style) -> None:
        """The conversation is idle with this history and style: prepare what the next reply
        will start from (the cascade evaluates its prompt's prefix) as idle work (`start_idle`),
        so it never delays a reply. Returns at once; an engine with nothing to prepare does nothing."""
        ...

    def speed_left(self, speed: float) -> float:
        """Only asked of engines with native_speed: the part of this speed their own control
        cannot reach (1.0: none), which the core's style processing makes up."""
        ...
