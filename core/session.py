"""The conversation loop: user audio in, turns out, the engine's reply streamed to the speaker.

`feed()` is called by the audio worker with 10 ms frames of 16 kHz mono audio and the time each was
captured. Voice activity decides when a turn starts and ends. At a short pause a reply is started
speculatively and held back; when the pause grows into the end of the turn the held reply is
released at once, and if the user speaks again it is thrown away. Everything the GUI needs arrives
as core events through `on_event`.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from core.audio.playback import PlaybackQueue
from core.audio.vad import SileroVad
from core.events import (
    AssistantText,
    CoreEvent,
    Notice,
    ReplyFinished,
    StateChanged,
    TurnLatency,
    UserTranscript,
)
from core.turns import TurnConfig, TurnDetector
from models.engine import (
    Engine,
    Message,
    ReplyAudio,
    ReplyDone,
    ReplyText,
    StageTime,
    Style,
    TranscriptFinal,
    UserTurn,
)

RATE = 16000
_SPEECH_TAIL = RATE // 10  # keep 100 ms after the last voiced window: word endings are soft


@dataclass
class _Timeline:
    """Maps sample positions of the input stream to the wall-clock time they were captured."""

    pos: int = 0  # samples received so far
    last_time: float = 0.0  # capture time of sample `pos`

    def time_of(self, sample: int) -> float:
        return self.last_time - (self.pos - sample) / RATE


class _Reply:
    """One reply on its own worker thread. Until committed, what it produces is held back."""

    def __init__(self, session: "Session", turn: UserTurn, committed: bool, last_voiced_at: float,
                 voiced_end: int) -> None:
        self.session = session
        self.turn = turn
        self.voiced_end = voiced_end  # input position where the turn's speech ended
        self.last_voiced_at = last_voiced_at
        self.committed_at: float | None = time.perf_counter() if committed else None
        self.transcript = ""
        self.spoken: list[str] = []
        self.stages: dict[str, float] = {}
        self.reason = ""
        self._lock = threading.Lock()
        self._held: list[Callable[[], None]] = []
        self._cancelled = threading.Event()
        self.done = threading.Event()
        self._started_audio = False
        self._thread = threading.Thread(target=self._run, name="engine-worker", daemon=True)
        self._thread.start()

    @property
    def committed(self) -> bool:
        return self.committed_at is not None

    def commit(self, last_voiced_at: float) -> None:
        with self._lock:
            self.committed_at = time.perf_counter()
            self.last_voiced_at = last_voiced_at
            held, self._held = self._held, []
            for action in held:
                action()

    def cancel(self) -> None:
        # Under the lock: no chunk can slip into the playback queue after the flush.
        with self._lock:
            self._cancelled.set()
            if self.committed:
                self.session.playback.flush()
        self.session.engine.cancel()

    def _deliver(self, action: Callable[[], None], always: bool = False) -> None:
        with self._lock:
            if self._cancelled.is_set() and not always:
                return
            if self.committed_at is not None:
                action()
            else:
                self._held.append(action)

    def _audio(self, samples: np.ndarray, rate: int) -> None:
        if not self._started_audio:
            self._started_audio = True
            self.session.playback.begin_reply()
            self.session._set_state("speaking")
        self.session.playback.write(samples, rate)

    def _run(self) -> None:
        s = self.session
        try:
            for event in s.engine.respond(self.turn, s.style):
                if self._cancelled.is_set():
                    break
                if isinstance(event, TranscriptFinal):
                    self.transcript = event.text
                    self._deliver(lambda t=event.text: s._emit(UserTranscript(t)))
                elif isinstance(event, ReplyText):
                    self.spoken.append(event.delta)
                    self._deliver(lambda d=event.delta: s._emit(AssistantText(d)))
                elif isinstance(event, ReplyAudio):
                    self._deliver(lambda a=event.samples, r=event.rate: self._audio(a, r))
                elif isinstance(event, StageTime):
                    self.stages[event.stage] = event.seconds * 1000
                elif isinstance(event, ReplyDone):
                    self.reason = event.reason
        except Exception as exc:
            self.reason = f"error: {exc}"
        if self._cancelled.is_set():
            self.reason = "cancelled"
        self._deliver(self._finish, always=True)

    def _finish(self) -> None:
        # Runs once committed; waits for the speaker to play out on a thread of its own.
        threading.Thread(target=self._drain, name="reply-drain", daemon=True).start()

    def _drain(self) -> None:
        s = self.session
        if self._started_audio and not self._cancelled.is_set():
            s.playback.end_reply()
            while s.playback.queued_samples and not self._cancelled.is_set():
                time.sleep(0.005)
        s._reply_finished(self)
        self.done.set()


class Session:
    def __init__(self, engine: Engine, vad: SileroVad, playback: PlaybackQueue,
                 config: TurnConfig = TurnConfig(), style: Style = Style(),
                 on_event: Callable[[CoreEvent], None] | None = None) -> None:
        self.engine = engine
        self.vad = vad
        self.playback = playback
        self.config = config
        self.style = style
        self.on_event = on_event or (lambda event: None)
        self.history: list[Message] = []
        self.latencies: list[TurnLatency] = []
        self.state = ""
        self._detector = TurnDetector(config)
        self._timeline = _Timeline()
        self._buf = np.zeros(0, np.float32)  # input since `_buf_start`
        self._buf_start = 0
        self._turn_start = 0
        self._reply: _Reply | None = None
        self._lock = threading.RLock()
        self._idle = threading.Event()
        self._idle.set()
        self._set_state("listening")

    # ---- settings that apply from the next turn on ----------------------------------------

    def set_style(self, style: Style) -> None:
        self.style = style

    def set_turn_config(self, config: TurnConfig) -> None:
        with self._lock:
            self.config = config
            self._detector = TurnDetector(config)

    # ---- input ------------------------------------------------------------------------------

    def feed(self, frame: np.ndarray, captured_at: float) -> None:
        with self._lock:
            self._timeline.pos += len(frame)
            self._timeline.last_time = captured_at
            self._buf = np.concatenate([self._buf, frame])
            if self._reply is not None and self._reply.committed:
                self._keep_pre_roll()
                return  # half duplex until echo cancellation lets it listen while speaking
            for prob in self.vad.push(frame):
                for event in self._detector.push(prob):
                    self._on_turn_event(event.kind, event.at)
            if not self._detector.in_turn and self._reply is None:
                self._keep_pre_roll()

    def say(self, text: str) -> None:
        """A typed question: answered aloud like a spoken one."""
        with self._lock:
            if self._reply is not None:
                self._reply.cancel()
            self._start_reply(UserTurn(text=text, history=tuple(self.history)), committed=True,
                              last_voiced_at=time.perf_counter(), voiced_end=self._timeline.pos)

    def stop(self) -> None:
        """Stop the reply now (the stop button)."""
        with self._lock:
            if self._reply is not None:
                self._reply.cancel()

    def wait_idle(self, timeout: float) -> bool:
        return self._idle.wait(timeout)

    # ---- turn logic ---------------------------------------------------------------------

    def _keep_pre_roll(self) -> None:
        keep = RATE * self.config.pre_roll_ms // 1000
        if len(self._buf) > keep:
            drop = len(self._buf) - keep
            self._buf = self._buf[drop:]
            self._buf_start += drop

    def _turn_audio(self, end: int) -> np.ndarray:
        start = max(self._turn_start, self._buf_start)
        return self._buf[start - self._buf_start : end - self._buf_start].copy()

    def _on_turn_event(self, kind: str, at: int) -> None:
        if kind == "start":
            self._turn_start = max(self._buf_start, at - RATE * self.config.pre_roll_ms // 1000)
            self._set_state("hearing")
        elif kind == "pause":
            self._start_reply(self._user_turn(at), committed=False,
                              last_voiced_at=self._timeline.time_of(at), voiced_end=at)
        elif kind == "resume":
            if self._reply is not None and not self._reply.committed:
                self._reply.cancel()
                self._reply = None
                self._idle.set()
        elif kind == "end":
            last_voiced_at = self._timeline.time_of(at)
            reply = self._reply
            if reply is not None and not reply.committed and reply.voiced_end == at:
                self._set_state("thinking")
                reply.commit(last_voiced_at)
            else:
                if reply is not None:
                    reply.cancel()
                self._start_reply(self._user_turn(at), committed=True,
                                  last_voiced_at=last_voiced_at, voiced_end=at)

    def _user_turn(self, voiced_end: int) -> UserTurn:
        # A little of what follows the speech, up to what has arrived: word endings are soft.
        end = min(voiced_end + _SPEECH_TAIL, self._timeline.pos)
        return UserTurn(audio=self._turn_audio(end), history=tuple(self.history))

    def _start_reply(self, turn: UserTurn, committed: bool, last_voiced_at: float, voiced_end: int) -> None:
        self._idle.clear()
        if committed:
            self._set_state("thinking")
        self._reply = _Reply(self, turn, committed, last_voiced_at, voiced_end)

    def _reply_finished(self, reply: _Reply) -> None:
        with self._lock:
            if reply is not self._reply:
                return
            self._reply = None
            spoken = "".join(reply.spoken).strip()
            if reply.transcript and reply.reason in ("complete", "cancelled") and spoken:
                self.history.append(Message("user", reply.transcript))
                self.history.append(Message("assistant", spoken, interrupted=reply.reason == "cancelled"))
            self._emit(ReplyFinished(spoken, reply.reason))
            if reply.reason.startswith("error"):
                self._emit(Notice("error", reply.reason.removeprefix("error: ")))
            first = self.playback.first_sample_at
            if first is not None and reply.committed_at is not None and reply.reason == "complete":
                latency = TurnLatency(
                    end_of_turn=(reply.committed_at - reply.last_voiced_at) * 1000,
                    response=(first - reply.last_voiced_at) * 1000,
                    stages=dict(reply.stages),
                )
                self.latencies.append(latency)
                self._emit(latency)
            self.vad.reset()
            self._detector.reset()
            self._keep_pre_roll()
            self._set_state("listening")
            self._idle.set()

    # ---- events -------------------------------------------------------------------------

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self._emit(StateChanged(state))

    def _emit(self, event: CoreEvent) -> None:
        try:
            self.on_event(event)
        except Exception:  # a faulty listener must not take the conversation down
            pass
