"""The conversation loop: user audio in, turns out, the engine's reply streamed to the speaker.

`feed()` is called by the audio worker with 10 ms frames of 16 kHz mono audio (echo-cancelled)
and the time each was captured, and optionally the same frame cleaned for speech recognition (the
echo canceller's linear output, which keeps the user's voice intact in double talk, where the
fully suppressed frame that voice activity needs has it carved). Voice activity decides when a
turn starts and ends. At a short pause a reply is started speculatively and held back; when the
pause grows into the end of the turn the held reply is released at once, and if the user speaks
again it is thrown away.

While the companion speaks it keeps listening (when the input is echo-cancelled): speech soon after
the turn ended reopens that turn; speech later is a barge-in: the reply fades out, generation
stops, and what was actually heard is kept in the history, marked as interrupted; the first
moment of such speech pauses the reply, which goes on if it was nothing (see core/turns.py).
Push-to-talk uses the same path with the key as the turn boundary.

Ownership: every reply has its own thread and its own CancelToken; ending a reply cancels exactly
that token. All session state (the current reply, what it delivered, the history, the state) is
changed under one lock; events to listeners are queued under it and handed out, in order, after
it is released, so a listener can never stall the audio worker or call back into a held lock.
"""

from __future__ import annotations

import collections
import functools
import itertools
import logging
import threading
import time
from contextlib import closing
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from core.audio.playback import PlaybackQueue
from core.audio.turn_end import WINDOW_S as JUDGED_S
from core.audio.vad import SileroVad
from core.events import (
    AssistantText,
    CoreEvent,
    Mode,
    Notice,
    ReplyEnd,
    ReplyFinished,
    State,
    StateChanged,
    TurnLatency,
    UserTranscript,
)
from core.style.chain import StyleChain, VoiceProfiles, engine_chain
from core.turns import TurnConfig, TurnDetector, TurnEventKind
from models.engine import (
    CancelToken,
    EndReason,
    Engine,
    Message,
    ReplyAudio,
    ReplyDone,
    ReplyText,
    PromptTokens,
    StageTime,
    Style,
    TranscriptFinal,
    UserTurn,
)
from core.audio.format import RATE

_SPEECH_TAIL = RATE // 10  # keep 100 ms after the last voiced window: word endings are soft
JUDGED = JUDGED_S * RATE  # the end-of-turn model hears the turn's last seconds only: no more is copied for it
CLOSE_WAIT_S = 5.0  # close() waits this long for the last reply's thread (it leaves within one step)
HISTORY_MESSAGES = 200  # kept in memory; far more than any engine's token budget reads
# Beyond that the oldest are dropped this many at once: an engine that keeps its prompt's start
# fixed for several turns (the chat model drops history a page of 8 messages at a time) keeps
# its alignment, and with it the cached prompt, when the history is cut.
HISTORY_DROP = 64
log = logging.getLogger(__name__)

_ENGINE_END = {
    EndReason.COMPLETE: ReplyEnd.COMPLETE,
    EndReason.CANCELLED: ReplyEnd.CANCELLED,
    EndReason.EMPTY: ReplyEnd.EMPTY,
    EndReason.ERROR: ReplyEnd.ERROR,
}


class Judge(Protocol):
    """Says whether a pause ends the turn (core.audio.turn_end.TurnJudge, or a test's stand-in)."""

    def ask(self, key: int, audio: np.ndarray) -> None: ...

    def verdict(self, key: int) -> float | None: ...

    def close(self) -> None: ...


@dataclass
class _Timeline:
    """Maps sample positions of the input stream to the clock time they were captured."""

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


@dataclass
class _Reply:
    """One reply: its turn, its token, what it delivered. Its fields are the session's state and
    change under the session's lock; `run` (on the reply's own thread) only reads the engine."""

    number: int
    turn: UserTurn
    style: Style  # settings changed mid-reply apply from the next reply on
    voiced_end: int  # input position where the turn's speech ended
    turn_start: int
    last_voiced_at: float
    committed_at: float | None  # None: speculative, everything it makes is held back
    token: CancelToken = field(default_factory=CancelToken)
    transcript: str = ""
    heard_at: float | None = None  # when the engine's transcript reached the session
    clauses: list[tuple[str, int]] = field(default_factory=list)  # (text, first device sample)
    stages: dict[str, float] = field(default_factory=dict)
    prompt_tokens: dict[str, int] = field(default_factory=dict)
    held: list[Callable[[], None]] = field(default_factory=list)
    started_audio: bool = False
    engine_end: tuple[ReplyEnd, str] | None = None  # the engine's iterator has ended, and how
    audio_closed: bool = False
    end: ReplyEnd | None = None
    thread: threading.Thread | None = None

    @property
    def committed(self) -> bool:
        return self.committed_at is not None

    @property
    def spoken(self) -> str:
        return " ".join(text for text, _ in self.clauses).strip()


class Session:
    def __init__(
        self,
        engine: Engine,
        vad: SileroVad,
        playback: PlaybackQueue,
        config: TurnConfig = TurnConfig(),
        style: Style = Style(),
        on_event: Callable[[CoreEvent], None] | None = None,
        mode: Mode = Mode.ALWAYS_LISTENING,
        duplex: bool = False,
        make_chain: Callable[[Style, int], StyleChain | None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        judge: "Judge | None" = None,
    ) -> None:
        """`duplex`: the input is echo-cancelled (or echo-free), so the session may listen while
        it speaks; without it, speech during a reply is ignored. `make_chain(style, rate)` builds
        the style post-processing for one reply (default: what the engine cannot do itself).
        `clock` is the time base of capture times and of every wait the session measures.
        `judge` says whether a pause ends the turn (core/audio/turn_end.py); without one, only
        the end-of-turn silence does. The session closes it."""
        self.judge = judge
        self._judged_pause: int | None = None  # the pause the judge was last asked about
        self.engine = engine
        self.vad = vad
        self.playback = playback
        self.config = config
        self.style = style
        self.mode = Mode(mode)
        self.duplex = duplex
        self.clock = clock
        self.voice_profiles: VoiceProfiles | None = None  # (engine voice, reference speaker) when matching
        self.make_chain = make_chain or (lambda style, rate: engine_chain(engine, style, rate, self.voice_profiles))
        self.on_event = on_event or (lambda event: None)
        self.history: list[Message] = []
        self.latencies: list[TurnLatency] = []
        self.interruptions = 0
        self.holds = 0  # replies paused because someone might be cutting in
        self.released = 0  # of those, the ones that went on (it was not a barge-in)
        self.replies_started = 0
        self.replies_ended: collections.Counter[ReplyEnd] = collections.Counter()
        # Replies prepared at a pause: how many, how many became the answer, how many were dropped.
        self.prepared: collections.Counter[str] = collections.Counter()
        self.state = State.IDLE
        self._detector = TurnDetector(config)
        self._timeline = _Timeline()
        self._buf = np.zeros(0, np.float32)  # input since `_buf_start`
        self._buf_start = 0
        self._turn_start = 0
        self._ptt_held = False
        self._ptt_voiced_from = 0
        self._barge_in_held_until = 0.0
        self._reply: _Reply | None = None
        self._last_thread: threading.Thread | None = None
        self._closed = False
        self._numbers = itertools.count(1)
        self._lock = threading.RLock()
        self._outbox: list[CoreEvent] = []
        self._emitting = threading.RLock()
        with self._locked():
            self._set_state(State.LISTENING)
            self._prime()

    # ---- settings that apply from the next turn on ----------------------------------------

    def set_style(self, style: Style) -> None:
        with self._lock:
            changed, self.style = style != self.style, style
            if changed:
                self._prime()

    def set_turn_config(self, config: TurnConfig) -> None:
        with self._locked():
            if config == self.config:
                return
            self.config = config
            position = self._detector.position
            self._detector = TurnDetector(config)
            self._detector.reset(at=position)  # the same stream: its positions go on
            self._forget_turn()

    def set_mode(self, mode: Mode) -> None:
        mode = Mode(mode)  # raises ValueError for anything else
        with self._locked():
            if mode == self.mode:
                return
            self.mode = mode
            self._forget_turn()

    # ---- input ------------------------------------------------------------------------------

    def feed(self, frame: np.ndarray, captured_at: float, speech: np.ndarray | None = None) -> None:
        with self._locked():
            self._timeline.pos += len(frame)
            self._timeline.last_time = captured_at
            self._buf = np.concatenate([self._buf, frame if speech is None else speech])
            reply = self._reply
            if reply is not None:
                self._finish_if_played(reply)
                reply = self._reply
            speaking = reply is not None and reply.committed
            if speaking and not self.duplex:
                self._trim_buffer()
                return  # half duplex: without echo cancellation it would hear itself
            for prob, level in self.vad.push_levels(frame):
                if self.mode == Mode.PUSH_TO_TALK:
                    self._detector.push(prob)  # only to know where speech ended
                    continue
                # Speech soon after the turn ended continues it (the normal start rule); later, it
                # has to be a barge-in.
                barge = self._reply is not None and self._reply.committed and not self._reopenable(self._reply)
                needed = None
                if barge:
                    held = self.clock() < self._barge_in_held_until
                    needed = float("inf") if held else self.config.barge_in_ms
                for event in self._detector.push(prob, needed, level):
                    self._on_turn_event(event.kind, event.at)
                self._end_if_judged_complete()
            self._trim_buffer()

    def say(self, text: str) -> None:
        """A typed question: answered aloud like a spoken one."""
        with self._locked():
            self._interrupt(ReplyEnd.INTERRUPTED)
            self._start_reply(
                UserTurn(text=text, history=tuple(self.history)),
                committed=True,
                last_voiced_at=self.clock(),
                voiced_end=self._timeline.pos,
            )

    def announce(self, text: str) -> None:
        """Say `text` as it is (a greeting): a reply without a question, not kept in the history."""
        with self._locked():
            self._interrupt(ReplyEnd.INTERRUPTED)
            self._start_reply(
                UserTurn(verbatim=text, history=tuple(self.history)),
                committed=True,
                last_voiced_at=self.clock(),
                voiced_end=self._timeline.pos,
            )

    def stop(self) -> None:
        """Stop the reply now (the stop button): like a barge-in, without a new turn."""
        with self._locked():
            self._interrupt(ReplyEnd.INTERRUPTED)
            self._detector.reset()
            self._set_state(State.LISTENING)

    def press(self) -> None:
        """Push-to-talk pressed: interrupt whatever is playing and start a turn."""
        with self._locked():
            self._interrupt(ReplyEnd.INTERRUPTED)
            self._ptt_held = True
            self._turn_start = max(self._buf_start, self._timeline.pos - RATE * self.config.pre_roll_ms // 1000)
            self._detector.reset()
            self._detector.begin_turn()
            self._ptt_voiced_from = self._timeline.pos
            self._set_state(State.HEARING)

    def release(self) -> None:
        """Push-to-talk released: the turn ends here."""
        with self._locked():
            if not self._ptt_held:
                return
            self._ptt_held = False
            voiced_end = self._detector.last_voiced_end
            if voiced_end <= self._ptt_voiced_from:  # nothing voiced since the press
                voiced_end = self._timeline.pos
            voiced_end = min(voiced_end, self._timeline.pos)
            self._detector.reset()
            # The key is the turn's boundary: everything up to the release is heard (voice
            # activity can end before a soft last word such as "France"); where speech ended
            # still dates the response.
            turn = UserTurn(audio=self._turn_audio(self._timeline.pos), history=tuple(self.history))
            self._start_reply(
                turn, committed=True, last_voiced_at=self._timeline.time_of(voiced_end), voiced_end=voiced_end
            )

    def hold_barge_in(self, seconds: float) -> None:
        """A device was replaced: the echo canceller relearns the room for a moment, and what it
        leaves meanwhile must not interrupt the reply."""
        with self._lock:
            self._barge_in_held_until = self.clock() + seconds

    @property
    def starving(self) -> bool:
        """A reply is playing and the speaker has nothing left of it while its engine is still at
        work: on a virtual clock, time should wait for the engine here (see bench soak)."""
        with self._lock:
            reply = self._reply
            return (
                reply is not None
                and reply.committed
                and reply.engine_end is None
                and not self.playback.paused
                and self.playback.queued_samples == 0
            )

    def close(self) -> None:
        """End the conversation: the reply stops and its thread is waited for (within one step);
        the engine's idle preparation for a next reply is stopped too."""
        with self._lock:
            self._closed = True
        self.stop()
        self.engine.lease.stop_idle(CLOSE_WAIT_S)
        if self.judge is not None:
            self.judge.close()
        with self._lock:
            thread = self._last_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=CLOSE_WAIT_S)

    # ---- turn logic (session lock held) ---------------------------------------------------

    def _forget_turn(self) -> None:
        """The rules of turn taking changed: a turn in progress (and a reply prepared for it) is
        dropped, a hold is let go; a reply already taken goes on."""
        if self._reply is not None and not self._reply.committed:
            self._interrupt(ReplyEnd.DISCARDED)
        self._ptt_held = False
        self._detector.reset()
        self.playback.resume()
        if self._reply is None:
            self._set_state(State.LISTENING)
        elif self._reply.started_audio:
            self._set_state(State.SPEAKING)

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
        return (
            reply.committed_at is not None
            and reply.turn.text is None
            and reply.turn.verbatim is None
            and self.clock() - reply.committed_at <= self.config.reopen_ms / 1000
        )

    def _turn_audio(self, end: int, most: int | None = None) -> np.ndarray:
        """The turn's audio up to `end`: its last `most` samples when given."""
        start = max(self._turn_start, self._buf_start, end - most if most is not None else 0)
        return self._buf[start - self._buf_start : end - self._buf_start].copy()

    def _on_turn_event(self, kind: TurnEventKind, at: int) -> None:
        reply = self._reply
        if kind == TurnEventKind.HOLD:
            if reply is not None and reply.committed and reply.started_audio:
                self.holds += 1
                self.playback.pause()
                self._set_state(State.HEARING)
        elif kind == TurnEventKind.RELEASE:
            if self.playback.paused:
                self.released += 1
                self.playback.resume()
                self._set_state(State.SPEAKING)
        elif kind == TurnEventKind.START:
            if reply is not None and reply.committed and self._reopenable(reply):
                self._turn_start = reply.turn_start  # the same turn goes on
                self._interrupt(ReplyEnd.DISCARDED)
            else:
                self._turn_start = max(self._buf_start, at - RATE * self.config.pre_roll_ms // 1000)
                self._interrupt(ReplyEnd.INTERRUPTED)
            self._set_state(State.HEARING)
        elif kind == TurnEventKind.PAUSE:
            if reply is not None and reply.committed:
                return  # a typed question is being answered: nothing to prepare
            if self.judge is not None:
                self._judged_pause = at
                self.judge.ask(at, self._turn_audio(min(at + _SPEECH_TAIL, self._timeline.pos), JUDGED))
            self._interrupt(ReplyEnd.DISCARDED)  # a speculative reply of an earlier pause
            self.prepared["prepared"] += 1
            self._start_reply(
                self._user_turn(at), committed=False, last_voiced_at=self._timeline.time_of(at), voiced_end=at
            )
        elif kind == TurnEventKind.RESUME:
            if reply is not None and not reply.committed:
                self._interrupt(ReplyEnd.DISCARDED)
        elif kind == TurnEventKind.END:
            last_voiced_at = self._timeline.time_of(at)
            if reply is not None and not reply.committed and reply.voiced_end == at:
                self._commit(reply, last_voiced_at)
            else:
                self._interrupt(ReplyEnd.INTERRUPTED)
                self._start_reply(self._user_turn(at), committed=True, last_voiced_at=last_voiced_at, voiced_end=at)

    def _end_if_judged_complete(self) -> None:
        """A pause the judge calls the end of the turn ends it after a short silence instead of
        the whole end-of-turn silence. The judge is asked once per pause, with the words and
        100 ms after them: asked again with more of the silence, it called as many pauses inside
        turns complete as it found ends (docs/benchmarks.md), so one judged unfinished waits for
        the user's end-of-turn silence."""
        if (
            self.judge is None
            or self._judged_pause is None  # no pause was judged yet
            or not self._detector.in_turn
            or self._detector.silence_ms < self.config.complete_after_ms
            or self._detector.last_voiced_end != self._judged_pause
        ):
            return
        probability = self.judge.verdict(self._judged_pause)
        if probability is not None and probability >= self.config.complete_threshold:
            event = self._detector.end_turn()
            self._on_turn_event(event.kind, event.at)

    def _interrupt(self, outcome: ReplyEnd) -> None:
        """Stop the current reply. INTERRUPTED: it was heard in part and stays in the history,
        cut to what was heard; DISCARDED: it never counted (a speculative or reopened reply)."""
        reply = self._reply
        if reply is None:
            return
        heard = ""
        if reply.started_audio:
            heard = heard_text(reply.clauses, self.playback.written, self.playback.played)
            self.playback.fade_out()
        if not reply.committed:
            outcome = ReplyEnd.DISCARDED  # nobody heard a reply that was never released
            self.prepared["thrown_away"] += 1
        if outcome == ReplyEnd.INTERRUPTED:
            self.interruptions += 1
            if reply.transcript and heard:
                self._remember(reply.transcript, heard, interrupted=True)
        self._end(reply, outcome, heard)

    def _prime(self) -> None:
        """No reply is running: let the engine prepare the next one from the history and style
        it will be given (idle work that any reply stops)."""
        if self._reply is not None or self._closed:
            return
        try:
            self.engine.prime(tuple(self.history), self.style)
        except Exception:
            log.exception("the engine could not prepare the next reply")

    def _remember(self, question: str, answer: str, interrupted: bool = False) -> None:
        """An exchange into the history the engine reads (it keeps what fits its own budget)."""
        self.history += [Message("user", question), Message("assistant", answer, interrupted=interrupted)]
        if len(self.history) > HISTORY_MESSAGES:
            del self.history[:HISTORY_DROP]

    def _user_turn(self, voiced_end: int) -> UserTurn:
        # A little of what follows the speech, up to what has arrived: word endings are soft.
        end = min(voiced_end + _SPEECH_TAIL, self._timeline.pos)
        return UserTurn(audio=self._turn_audio(end), history=tuple(self.history))

    def _start_reply(self, turn: UserTurn, committed: bool, last_voiced_at: float, voiced_end: int) -> None:
        now = self.clock()
        reply = _Reply(
            next(self._numbers),
            turn,
            self.style,
            voiced_end,
            self._turn_start,
            last_voiced_at,
            now if committed else None,
        )
        self._reply = reply
        self.replies_started += 1
        if committed:
            self._set_state(State.THINKING)
        reply.thread = threading.Thread(target=self._run, args=(reply,), name=f"reply-{reply.number}", daemon=True)
        self._last_thread = reply.thread
        reply.thread.start()

    def _commit(self, reply: _Reply, last_voiced_at: float) -> None:
        self.prepared["used"] += 1
        reply.committed_at = self.clock()
        reply.last_voiced_at = last_voiced_at
        self._set_state(State.THINKING)
        held, reply.held = reply.held, []
        for action in held:
            action()
        self._finish_if_played(reply)

    def _finish_if_played(self, reply: _Reply) -> None:
        """End a committed reply once its engine is done and the speaker has played it all."""
        if reply is not self._reply or not reply.committed or reply.engine_end is None:
            return
        if reply.started_audio:
            if not reply.audio_closed:
                reply.audio_closed = True
                self.playback.end_reply()
            if self.playback.queued_samples:
                return
        reason, detail = reply.engine_end
        spoken = reply.spoken
        if reply.transcript and reason == ReplyEnd.COMPLETE and spoken:
            self._remember(reply.transcript, spoken)
        if reason == ReplyEnd.ERROR:
            self._emit(Notice("error", detail))
        self._end(reply, reason, spoken, detail)
        first = self.playback.first_sample_at
        if first is not None and reason == ReplyEnd.COMPLETE and reply.started_audio:
            stages = dict(reply.stages)
            committed_at = reply.committed_at
            assert committed_at is not None  # a reply the user heard was committed
            if reply.heard_at is not None:  # recognition the user waited for after the turn was over
                stages["asr_after_end"] = max(0.0, reply.heard_at - committed_at) * 1000
            latency = TurnLatency(  # after ReplyFinished: it belongs to the reply just reported
                end_of_turn=(committed_at - reply.last_voiced_at) * 1000,
                response=(first - reply.last_voiced_at) * 1000,
                stages=stages,
                prompt_tokens=dict(reply.prompt_tokens),
            )
            self.latencies.append(latency)
            self._emit(latency)
        if not self.duplex:
            # Half duplex: the VAD heard nothing while the reply played and starts afresh here,
            # so the detector's count of samples moves on to where the next window starts.
            self.vad.reset()
            self._detector.reset(at=self._timeline.pos)
        # In push-to-talk the detector only dates where speech ended: what it hears without the
        # key (the reply's own echo, a cough) is no turn and must not keep the state at speaking.
        in_turn = self._detector.in_turn and self.mode != Mode.PUSH_TO_TALK
        if not in_turn and not self._ptt_held:
            self._set_state(State.LISTENING)

    def _end(self, reply: _Reply, outcome: ReplyEnd, text: str, detail: str = "") -> None:
        """The one place a reply ends: its token is cancelled (its workers stop within one step),
        it is no longer current, and a reply the user could hear is reported once."""
        if reply.end is not None:
            raise RuntimeError(f"reply {reply.number} ended twice ({reply.end}, then {outcome})")
        reply.end = outcome
        reply.token.cancel()
        self.replies_ended[outcome] += 1
        if self._reply is reply:
            self._reply = None
            self._prime()
        if reply.committed:
            self._emit(ReplyFinished(text, outcome, detail, reply.transcript))

    # ---- the reply's thread -----------------------------------------------------------------

    def _run(self, reply: _Reply) -> None:
        """Iterate the engine's reply and hand each event to the session (which keeps back what a
        speculative reply makes until it is committed). Audio is styled here, not under the lock."""
        chain, rate = None, 0
        end: tuple[ReplyEnd, str] = (ReplyEnd.CANCELLED, "")
        try:
            # respond() is a generator: closing it ends the engine's relay of this reply
            with closing(self.engine.respond(reply.turn, reply.style, reply.token)) as events:  # type: ignore[type-var]
                for event in events:
                    if reply.token.cancelled:
                        break
                    if isinstance(event, TranscriptFinal):
                        with self._lock:
                            reply.heard_at = self.clock()
                        self._deliver(reply, functools.partial(self._transcript, reply, event.text))
                    elif isinstance(event, ReplyText):
                        self._deliver(reply, functools.partial(self._clause, reply, event.delta))
                    elif isinstance(event, ReplyAudio):
                        if rate == 0:
                            rate, chain = event.rate, self.make_chain(reply.style, event.rate)
                        for samples in chain.pieces(event.samples) if chain is not None else [event.samples]:
                            if reply.token.cancelled:
                                break
                            self._deliver(reply, functools.partial(self._audio, reply, samples, event.rate))
                    elif isinstance(event, StageTime):
                        self._deliver(
                            reply, functools.partial(reply.stages.__setitem__, event.stage, event.seconds * 1000)
                        )
                    elif isinstance(event, PromptTokens):
                        self._deliver(
                            reply, functools.partial(reply.prompt_tokens.update, cached=event.cached, new=event.new)
                        )
                    elif isinstance(event, ReplyDone):
                        end = (_ENGINE_END[EndReason(event.reason)], event.detail)
            if chain is not None and not reply.token.cancelled:
                tail = chain.flush()
                self._deliver(reply, lambda: self._audio(reply, tail, rate))
        except Exception as exc:
            log.exception("reply %d failed", reply.number)
            end = (ReplyEnd.ERROR, f"{type(exc).__name__}: {exc}")
        finally:
            reply.token.cancel()  # whatever ended it, its workers stop now
            self._deliver(reply, lambda: self._engine_done(reply, end))

    def _deliver(self, reply: _Reply, action: Callable[[], None]) -> None:
        with self._locked():
            if reply.end is not None:
                return  # ended by the session: nothing of it reaches anyone any more
            if reply.committed:
                action()
            else:
                reply.held.append(action)

    def _transcript(self, reply: _Reply, text: str) -> None:
        reply.transcript = text
        self._emit(UserTranscript(text))

    def _start_audio(self, reply: _Reply) -> None:
        if not reply.started_audio:
            reply.started_audio = True
            self.playback.begin_reply()

    def _clause(self, reply: _Reply, text: str) -> None:
        self._start_audio(reply)
        reply.clauses.append((text.strip(), self.playback.written))
        self._emit(AssistantText(text))

    def _audio(self, reply: _Reply, samples: np.ndarray, rate: int) -> None:
        self._start_audio(reply)
        if not self.playback.paused:
            self._set_state(State.SPEAKING)
        self.playback.write(samples, rate)

    def _engine_done(self, reply: _Reply, end: tuple[ReplyEnd, str]) -> None:
        reply.engine_end = end
        self._finish_if_played(reply)

    # ---- state and events -------------------------------------------------------------------

    def _set_state(self, state: State) -> None:
        if state != self.state:
            self.state = state
            self._emit(StateChanged(state))

    def _emit(self, event: CoreEvent) -> None:
        self._outbox.append(event)  # session lock held: handed out by `_locked` once released

    def _locked(self) -> "_Locked":
        return _Locked(self)

    def _hand_out(self) -> None:
        """Deliver queued events in the order they were made. One thread delivers at a time and
        takes everything queued so far; a thread that finds another delivering leaves its events
        to it and returns at once (the audio worker never waits for a slow listener)."""
        while True:
            if not self._emitting.acquire(blocking=False):
                return
            try:
                while True:
                    with self._lock:
                        batch, self._outbox = self._outbox, []
                    if not batch:
                        break
                    for event in batch:
                        try:
                            self.on_event(event)
                        except Exception:  # a faulty listener must not take the conversation down
                            log.exception("a listener failed on %s", type(event).__name__)
            finally:
                self._emitting.release()
            with self._lock:  # queued after the last look, while the other thread gave up: go on
                if not self._outbox:
                    return


class _Locked:
    """`with session._locked():` the session lock, and the events made under it handed out after."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def __enter__(self) -> None:
        self._session._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._session._lock.release()
        self._session._hand_out()
