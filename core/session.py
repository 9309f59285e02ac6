"""The conversation loop: user audio in, turns out, the engine's reply streamed to the speaker.

`feed()` is called by the audio worker with 10 ms frames of 16 kHz mono audio (echo-cancelled)
and the time each was captured, and optionally the same frame cleaned for speech recognition (the
echo canceller's linear output, which keeps the user's voice intact in double talk, where the
fully suppressed frame that voice activity needs has it carved). Voice activity decides when a turn starts and ends. At a short
pause a reply is started speculatively and held back; when the pause grows into the end of the
turn the held reply is released at once, and if the user speaks again it is thrown away.

While the companion speaks it keeps listening (when the input is echo-cancelled): speech soon after
the turn ended reopens that turn; speech later is a barge-in: the reply fades out, generation
stops, and what was actually heard is kept in the history, marked as interrupted; the first
moment of such speech pauses the reply, which goes on if it was nothing (see core/turns.py). Push-to-talk
uses the same path with the key as the turn boundary.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
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
from core.style.chain import StyleChain, engine_chain
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
ALWAYS_LISTENING = "always_listening"
PUSH_TO_TALK = "push_to_talk"


@dataclass
class _Timeline:
    """Maps sample positions of the input stream to the wall-clock time they were captured."""

    pos: int = 0  # samples received so far
    last_time: float = 0.0  # capture time of sample `pos`

    def time_of(self, sample: int) -> float:
        return self.last_time - (self.pos - sample) / RATE


def heard_text(clauses: list[tuple[str, int]], written: int, played: int) -> str:
    """What the listener actually heard of a reply: the clauses fully played, and the share of
    words of the clause that was playing, given each clause's first device sample."""
    words: list[str] = []
    for i, (text, start) in enumerate(clauses):
        end = clauses[i + 1][1] if i + 1 < len(clauses) else written
        if played >= end:
            words += text.split()
        elif played > start:
            share = (played - start) / max(1, end - start)
            clause_words = text.split()
            words += clause_words[: round(len(clause_words) * share)]
            break
        else:
            break
    return " ".join(words)


class _Reply:
    """One reply on its own worker thread. Until committed, what it produces is held back."""

    def __init__(self, session: "Session", turn: UserTurn, committed: bool, last_voiced_at: float,
                 voiced_end: int, turn_start: int) -> None:
        self.session = session
        self.turn = turn
        self.voiced_end = voiced_end  # input position where the turn's speech ended
        self.turn_start = turn_start
        self.last_voiced_at = last_voiced_at
        self.style = session.style  # settings changed mid-reply apply from the next reply on
        self.committed_at: float | None = time.perf_counter() if committed else None
        self.transcript = ""
        self.clauses: list[tuple[str, int]] = []  # (text, first device sample) as delivered
        self.stages: dict[str, float] = {}
        self.reason = ""
        self.outcome = ""  # set by the session when it stops the reply: "interrupted" or "discarded"
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

    @property
    def started_audio(self) -> bool:
        return self._started_audio

    @property
    def spoken(self) -> str:
        return " ".join(text for text, _ in self.clauses).strip()

    def commit(self, last_voiced_at: float) -> None:
        with self._lock:
            self.committed_at = time.perf_counter()
            self.last_voiced_at = last_voiced_at
            held, self._held = self._held, []
            for action in held:
                action()

    def cancel(self, outcome: str) -> str:
        """Stop now. Returns what the listener heard. Under the lock: nothing reaches the
        playback queue after the fade."""
        with self._lock:
            self._cancelled.set()
            self.outcome = outcome
            heard = ""
            if self._started_audio:
                playback = self.session.playback
                heard = heard_text(self.clauses, playback.written, playback.played)
                playback.fade_out()
        self.session.engine.cancel()
        return heard

    def _deliver(self, action: Callable[[], None], always: bool = False) -> None:
        with self._lock:
            if self._cancelled.is_set() and not always:
                return
            if self.committed_at is not None:
                action()
            else:
                self._held.append(action)

    def _start_audio(self) -> None:
        if not self._started_audio:
            self._started_audio = True
            self.session.playback.begin_reply()

    def _clause(self, text: str) -> None:
        self._start_audio()
        self.clauses.append((text.strip(), self.session.playback.written))
        self.session._emit(AssistantText(text))

    def _audio(self, samples: np.ndarray, rate: int) -> None:
        self._start_audio()
        self.session._set_state("speaking")
        self.session.playback.write(samples, rate)

    def _run(self) -> None:
        s = self.session
        chain, rate = None, 0
        try:
            for event in s.engine.respond(self.turn, self.style):
                if self._cancelled.is_set():
                    break
                if isinstance(event, TranscriptFinal):
                    self.transcript = event.text
                    self._deliver(lambda t=event.text: s._emit(UserTranscript(t)))
                elif isinstance(event, ReplyText):
                    self._deliver(lambda d=event.delta: self._clause(d))
                elif isinstance(event, ReplyAudio):
                    if rate == 0:
                        rate, chain = event.rate, s.make_chain(self.style, event.rate)
                    # Styled here, on the engine's thread, not under the lock a barge-in needs;
                    # each part goes to the speaker as soon as it is styled.
                    for samples in chain.pieces(event.samples) if chain is not None else [event.samples]:
                        if self._cancelled.is_set():
                            break
                        self._deliver(lambda a=samples, r=event.rate: self._audio(a, r))
                elif isinstance(event, StageTime):
                    self.stages[event.stage] = event.seconds * 1000
                elif isinstance(event, ReplyDone):
                    self.reason = event.reason
            if chain is not None and not self._cancelled.is_set():
                tail = chain.flush()
                self._deliver(lambda a=tail, r=rate: self._audio(a, r))
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
                 on_event: Callable[[CoreEvent], None] | None = None,
                 mode: str = ALWAYS_LISTENING, duplex: bool = False,
                 make_chain: Callable[[Style, int], StyleChain | None] | None = None) -> None:
        """`duplex`: the input is echo-cancelled (or echo-free), so the session may listen while
        it speaks; without it, speech during a reply is ignored. `make_chain(style, rate)` builds
        the style post-processing for one reply (default: what the engine cannot do itself)."""
        self.engine = engine
        self.vad = vad
        self.playback = playback
        self.config = config
        self.style = style
        self.mode = mode
        self.duplex = duplex
        self.voice_profiles: tuple | None = None  # (engine voice, reference speaker) when matching
        self.make_chain = make_chain or (
            lambda style, rate: engine_chain(engine, style, rate, self.voice_profiles))
        self.on_event = on_event or (lambda event: None)
        self.history: list[Message] = []
        self.latencies: list[TurnLatency] = []
        self.interruptions = 0
        self.holds = 0  # replies paused because someone might be cutting in
        self.released = 0  # of those, the ones that went on (it was not a barge-in)
        self.state = ""
        self._detector = TurnDetector(config)
        self._timeline = _Timeline()
        self._buf = np.zeros(0, np.float32)  # input since `_buf_start`
        self._buf_start = 0
        self._turn_start = 0
        self._ptt_held = False
        self._barge_in_held_until = 0.0
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
            self.playback.resume()  # a hold belongs to the detector that was just replaced

    def set_mode(self, mode: str) -> None:
        if mode not in (ALWAYS_LISTENING, PUSH_TO_TALK):
            raise ValueError(f"unknown mode {mode!r}")
        with self._lock:
            self.mode = mode
            self._ptt_held = False
            self._detector.reset()
            self.playback.resume()

    # ---- input ------------------------------------------------------------------------------

    def feed(self, frame: np.ndarray, captured_at: float, speech: np.ndarray | None = None) -> None:
        with self._lock:
            self._timeline.pos += len(frame)
            self._timeline.last_time = captured_at
            self._buf = np.concatenate([self._buf, frame if speech is None else speech])
            reply = self._reply
            speaking = reply is not None and reply.committed
            if speaking and not self.duplex:
                self._trim_buffer()
                return  # half duplex: without echo cancellation it would hear itself
            for prob in self.vad.push(frame):
                if self.mode == PUSH_TO_TALK:
                    self._detector.push(prob)  # only to know where speech ended
                    continue
                # Speech soon after the turn ended continues it (the normal start rule); later, it
                # has to be a barge-in.
                barge = (self._reply is not None and self._reply.committed
                         and not self._reopenable(self._reply))
                needed = None
                if barge:
                    held = time.perf_counter() < self._barge_in_held_until
                    needed = float("inf") if held else self.config.barge_in_ms
                for event in self._detector.push(prob, needed):
                    self._on_turn_event(event.kind, event.at)
            self._trim_buffer()

    def say(self, text: str) -> None:
        """A typed question: answered aloud like a spoken one."""
        with self._lock:
            self._interrupt("interrupted")
            self._start_reply(UserTurn(text=text, history=tuple(self.history)), committed=True,
                              last_voiced_at=time.perf_counter(), voiced_end=self._timeline.pos)

    def announce(self, text: str) -> None:
        """Say `text` as it is (a greeting): a reply without a question, not kept in the history."""
        with self._lock:
            self._interrupt("interrupted")
            self._start_reply(UserTurn(verbatim=text, history=tuple(self.history)), committed=True,
                              last_voiced_at=time.perf_counter(), voiced_end=self._timeline.pos)

    def stop(self) -> None:
        """Stop the reply now (the stop button): like a barge-in, without a new turn."""
        with self._lock:
            self._interrupt("interrupted")
            self._detector.reset()
            self._set_state("listening")

    def press(self) -> None:
        """Push-to-talk pressed: interrupt whatever is playing and start a turn."""
        with self._lock:
            self._interrupt("interrupted")
            self._ptt_held = True
            self._turn_start = max(self._buf_start, self._timeline.pos - RATE * self.config.pre_roll_ms // 1000)
            self._detector.reset()
            self._detector.begin_turn()
            self._ptt_voiced_from = self._timeline.pos
            self._set_state("hearing")

    def release(self) -> None:
        """Push-to-talk released: the turn ends here."""
        with self._lock:
            if not self._ptt_held:
                return
            self._ptt_held = False
            voiced_end = self._detector.last_voiced_end
            if voiced_end <= self._ptt_voiced_from:  # nothing voiced since the press
                voiced_end = self._timeline.pos
            voiced_end = min(voiced_end, self._timeline.pos)
            self._detector.reset()
            self._start_reply(self._user_turn(voiced_end), committed=True,
                              last_voiced_at=self._timeline.time_of(voiced_end), voiced_end=voiced_end)

    def hold_barge_in(self, seconds: float) -> None:
        """A device was replaced: the echo canceller relearns the room for a moment, and what it
        leaves meanwhile must not interrupt the reply."""
        self._barge_in_held_until = time.perf_counter() + seconds

    def wait_idle(self, timeout: float) -> bool:
        return self._idle.wait(timeout)

    # ---- turn logic ---------------------------------------------------------------------

    def _trim_buffer(self) -> None:
        """Keep the audio a turn may still need: the current turn (also while its reply may yet
        be reopened), else only the pre-roll."""
        keep_from = self._timeline.pos - RATE * self.config.pre_roll_ms // 1000
        reply = self._reply
        if self._detector.in_turn or self._ptt_held:
            keep_from = min(keep_from, self._turn_start)
        elif reply is not None and self._reopenable(reply):
            keep_from = min(keep_from, reply.turn_start)
        drop = keep_from - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:]
            self._buf_start += drop

    def _reopenable(self, reply: _Reply) -> bool:
        return (reply.committed and reply.turn.text is None
                and time.perf_counter() - reply.committed_at <= self.config.reopen_ms / 1000)

    def _turn_audio(self, end: int) -> np.ndarray:
        start = max(self._turn_start, self._buf_start)
        return self._buf[start - self._buf_start : end - self._buf_start].copy()

    def _on_turn_event(self, kind: str, at: int) -> None:
        if kind == "hold":
            if self._reply is not None and self._reply.committed and self._reply.started_audio:
                self.holds += 1
                self.playback.pause()
                self._set_state("hearing")
            return
        if kind == "release":
            if self.playback.paused:
                self.released += 1
                self.playback.resume()
                self._set_state("speaking")
            return
        if kind == "start":
            reply = self._reply
            if reply is not None and reply.committed and self._reopenable(reply):
                self._turn_start = reply.turn_start  # the same turn goes on
                self._interrupt("discarded")
            else:
                self._turn_start = max(self._buf_start, at - RATE * self.config.pre_roll_ms // 1000)
                self._interrupt("interrupted")
            self._set_state("hearing")
        elif kind == "pause":
            self._start_reply(self._user_turn(at), committed=False,
                              last_voiced_at=self._timeline.time_of(at), voiced_end=at)
        elif kind == "resume":
            if self._reply is not None and not self._reply.committed:
                self._interrupt("discarded")
        elif kind == "end":
            last_voiced_at = self._timeline.time_of(at)
            reply = self._reply
            if reply is not None and not reply.committed and reply.voiced_end == at:
                self._set_state("thinking")
                reply.commit(last_voiced_at)
            else:
                self._interrupt("discarded")
                self._start_reply(self._user_turn(at), committed=True,
                                  last_voiced_at=last_voiced_at, voiced_end=at)

    def _interrupt(self, outcome: str) -> None:
        """Stop the current reply. "interrupted": it was heard in part and stays in the history,
        cut to what was heard; "discarded": it never counted (a speculative or reopened reply)."""
        reply, self._reply = self._reply, None
        if reply is None:
            return
        heard = reply.cancel(outcome)
        if outcome == "interrupted" and reply.committed:
            self.interruptions += 1
            if reply.transcript and heard:
                self.history.append(Message("user", reply.transcript))
                self.history.append(Message("assistant", heard, interrupted=True))
            self._emit(ReplyFinished(heard, "interrupted"))
        self._idle.set()

    def _user_turn(self, voiced_end: int) -> UserTurn:
        # A little of what follows the speech, up to what has arrived: word endings are soft.
        end = min(voiced_end + _SPEECH_TAIL, self._timeline.pos)
        return UserTurn(audio=self._turn_audio(end), history=tuple(self.history))

    def _start_reply(self, turn: UserTurn, committed: bool, last_voiced_at: float, voiced_end: int) -> None:
        self._idle.clear()
        if committed:
            self._set_state("thinking")
        self._reply = _Reply(self, turn, committed, last_voiced_at, voiced_end, self._turn_start)

    def _reply_finished(self, reply: _Reply) -> None:
        with self._lock:
            if reply is not self._reply:
                return  # already interrupted or discarded: accounted for there
            self._reply = None
            spoken = reply.spoken
            if reply.transcript and reply.reason == "complete" and spoken:
                self.history.append(Message("user", reply.transcript))
                self.history.append(Message("assistant", spoken))
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
            if not self.duplex:
                self.vad.reset()
                self._detector.reset()
            if not self._detector.in_turn and not self._ptt_held:
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
