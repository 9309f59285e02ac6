"""The streaming cascade: speech recognition -> chat model -> speech synthesis, all overlapping.

Three workers per reply, joined by queues:
  recognizer+writer thread: transcribes the turn, then streams the chat model's tokens through the
      clause splitter and queues each speakable clause the moment it is complete;
  voice thread: synthesizes queued clauses while the model keeps writing;
  the caller's thread: iterates `respond()`, which only relays events and watches the reply's
      token, so a cancel ends the iterator at once; the workers stop within one token / one clause.
The two workers hold the engine's lease: the next reply's workers start when both have ended.
"""

from __future__ import annotations

import collections
import logging
import math
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from models.cascade.asr import WhisperAsr
from models.cascade.chat import ChatConfig, ChatModel
from models.cascade.speakable import ClauseSplitter, speakable
from models.cascade.tts import PiperTts, trim_tail
from models.devices import DevicePlan, Machine, Placement, plan_devices, start_on_device
from models.engine import (
    POLL_S,
    Cancelled,
    CancelToken,
    Capabilities,
    EndReason,
    EngineEvent,
    IdleWork,
    ModelLease,
    ReplyAudio,
    ReplyDone,
    ReplyText,
    PromptTokens,
    StageTime,
    Message,
    Style,
    TranscriptFinal,
    UserTurn,
    start_idle,
    start_reply,
)

_END = object()
log = logging.getLogger(__name__)
_EARLY_CUT_WORDS = 3  # the fewest words a clause cut before its punctuation may have


class _Pace:
    """Keeps the speaker fed. `respond` notes when the audio the caller has taken in will have
    played (if it played from the moment it was taken); the writer asks, with each piece of text,
    whether the clause it is collecting would still be ready in time if its punctuation came now
    (synthesized, then taken in by the caller, who may style it first), and if not it cuts the
    clause where it stands. A short first clause ("Sure, the moon") can still run out before the
    next one is made, since the model only starts on that one once the first is synthesized: so
    the first clause is held back by what it lacks of the time the next one usually takes to be
    made (`hold_for`), at most HOLD_MAX_S, spending a little latency on a reply without a gap.
    The rates are learned as the voice speaks and kept from one reply to the next."""

    MARGIN_S = 0.25  # delivery and the device's own blocks between taking in and playing
    LEARN = 0.2  # weight of the newest measurement in each running rate
    HOLD_MAX_S = 0.6  # the longest the first clause is held back
    NEXT_KEPT = 12  # the latest times from the first clause to the second, kept
    # The hold plans for all but the slowest tenth of them: the time varies with the second
    # clause's length, and planning for the average left a gap after one reply in fifteen.
    NEXT_QUANTILE = 0.9

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs_out_at: float | None = None
        self._backlog = 0.0  # seconds of audio made and not yet taken in by the caller
        self.synth_seconds_per_char = 0.005  # a cautious guess at the voice's synthesis time, learnt as it speaks
        self.audio_seconds_per_char = 0.06  # the packaged voice speaks ~0.05 s per character
        self.take_seconds_per_audio_second = 0.0  # the caller's own time per second of audio
        self.next_clause_s = 1.0  # from the first clause's audio made to the second's: a cautious start, learnt
        self._next_times: collections.deque[float] = collections.deque(maxlen=self.NEXT_KEPT)
        self._planned = False  # _runs_out_at is a held clause's plan, not yet taken in

    def begin(self) -> None:
        with self._lock:
            self._runs_out_at, self._backlog, self._planned = None, 0.0, False

    def made(self, seconds: float) -> None:
        """The voice handed the caller `seconds` of audio (it takes them in one after another)."""
        with self._lock:
            self._backlog += seconds

    def spoke(self, chars: int, synth_seconds: float, audio_seconds: float) -> None:
        """A clause was synthesized: learn the voice's speed and its speaking rate."""
        chars = max(1, chars)
        self.synth_seconds_per_char += self.LEARN * (synth_seconds / chars - self.synth_seconds_per_char)
        self.audio_seconds_per_char += self.LEARN * (audio_seconds / chars - self.audio_seconds_per_char)

    def next_made(self, seconds: float) -> None:
        """The second clause's audio was made `seconds` after the first's: the expected time is
        the NEXT_QUANTILE of the latest ones (until there are three, the longest yet or the
        cautious start)."""
        self._next_times.append(seconds)
        if len(self._next_times) < 3:
            self.next_clause_s = max(self.next_clause_s, seconds)
        else:
            self.next_clause_s = float(np.quantile(self._next_times, self.NEXT_QUANTILE))

    def hold_for(self, first_seconds: float) -> float:
        """How long to hold back a first clause of `first_seconds` so that it lasts until the
        next clause is expected, with the margin the writer keeps."""
        return min(self.HOLD_MAX_S, max(0.0, self.next_clause_s + self.MARGIN_S - first_seconds))

    def first_phrase_chars(self) -> int:
        """The fewest characters a first clause cut before a phrase-opening word should hold: it
        must last, with the longest hold, until the next clause is expected ("The moon is" alone
        runs out long before "approximately 384,400 kilometres away" is made)."""
        lacking = self.next_clause_s + self.MARGIN_S - self.HOLD_MAX_S
        return max(0, math.ceil(lacking / max(self.audio_seconds_per_char, 1e-3)))

    def plan(self, release_at: float, seconds: float) -> None:
        """A held first clause of `seconds` is to be handed over at `release_at`."""
        with self._lock:
            self._runs_out_at, self._planned = release_at + seconds, True

    def taken(self, seconds: float, took: float) -> None:
        """The caller has taken in `seconds` of audio, spending `took` on it."""
        now = time.perf_counter()
        with self._lock:
            if seconds > 0:
                rate = took / seconds
                self.take_seconds_per_audio_second += self.LEARN * (rate - self.take_seconds_per_audio_second)
            start = now if self._runs_out_at is None or self._planned else max(now, self._runs_out_at)
            self._planned = False
            self._runs_out_at = start + seconds
            self._backlog = max(0.0, self._backlog - seconds)

    def running_short(self, pending_chars: int) -> bool:
        with self._lock:
            runs_out_at, backlog = self._runs_out_at, self._backlog
        if runs_out_at is None:  # nothing is playing yet: the first clause keeps its own rules
            return False
        # The caller gets to this clause after what it has not taken in yet.
        take = self.take_seconds_per_audio_second * (backlog + self.audio_seconds_per_char * pending_chars)
        ready_at = time.perf_counter() + self.synth_seconds_per_char * pending_chars + take + self.MARGIN_S
        return ready_at >= runs_out_at


def _wait_synthesized(clauses: queue.Queue, token: CancelToken) -> None:
    """Until the voice has synthesized every clause handed to it, or the reply is cancelled."""
    with clauses.all_tasks_done:
        while clauses.unfinished_tasks and not token.cancelled:
            clauses.all_tasks_done.wait(POLL_S)


@dataclass(frozen=True)
class CascadePaths:
    asr_dir: Path
    llm_file: Path
    tts_dir: Path


class CascadeEngine:
    capabilities = Capabilities(
        streaming_text=True,
        streaming_audio=True,
        instruction_styles=True,
        voice_matching=False,
        native_speed=True,
    )

    def __init__(self, asr: WhisperAsr, chat: ChatModel, tts: PiperTts, streaming: bool = True) -> None:
        self.asr, self.chat, self.tts = asr, chat, tts
        self.placements: dict[str, Placement] = {}  # where each model runs (see load)
        self.notices: tuple[str, ...] = ()  # models that could not start on the GPU, and why
        self.streaming = streaming
        self.output_rate = tts.rate
        self.lease = ModelLease()
        self.priming: IdleWork | None = None  # the latest preparation of a next reply (see prime)
        # The words recognised of the latest turn, with the history they follow: a reply prepared
        # at a pause and thrown away when the user goes on leaves them for priming (see prime).
        self._heard: tuple[tuple[Message, ...], str] | None = None
        self._pace = _Pace()

    @classmethod
    def load(
        cls,
        paths: CascadePaths,
        chat_config: ChatConfig = ChatConfig(),
        streaming: bool = True,
        threads: int = 2,
        plan: DevicePlan | None = None,
    ) -> "CascadeEngine":
        """Each model where `plan` places it (default: the CPU); one that fails to start on a GPU
        starts on the CPU, and `engine.notices` says why."""
        plan = plan or plan_devices("cpu", Machine())
        notices: list[str] = []
        asr, asr_at = start_on_device(
            "speech recognition", plan.asr, lambda p: start_asr(paths.asr_dir, threads, p), notices
        )
        chat, chat_at = start_on_device(
            "the chat model", plan.chat_llm, lambda p: start_chat(paths.llm_file, chat_config, p), notices
        )
        tts, tts_at = start_on_device("the voice", plan.tts, lambda p: start_tts(paths.tts_dir, threads, p), notices)
        engine = cls(asr, chat, tts, streaming=streaming)
        engine.placements = {"asr": asr_at, "chat_llm": chat_at, "tts": tts_at}
        engine.notices = tuple(notices)
        engine.warm()
        return engine

    def warm(self) -> None:
        """Run each model once so the first turn is as fast as the rest: the runtimes allocate
        their buffers on first use, and the chat model's system prompt lands in its KV cache."""
        rng = np.random.default_rng(0)
        with self.lease:
            self.asr.transcribe(rng.normal(0, 0.01, 16000).astype(np.float32))
            self.tts.warm()
            self.tts.speed_curve()  # timed once per voice (a few seconds), then read from its folder
            self.chat.warm()

    def prime(self, history: tuple[Message, ...], style: Style) -> None:
        """Evaluate the next prompt's start (system text and kept history) while the user has the
        floor: after a reply, or when the history's oldest page is dropped, that prefix is new
        to llama.cpp's cache, and evaluating it when the question comes costs seconds on a CPU.
        While a turn goes on, the start includes the words recognised of it so far: a reply
        prepared at a pause is mostly thrown away during its recognition (the user went on), and
        the question of a long turn would otherwise be evaluated whole after it ends."""

        def work(token: CancelToken) -> None:
            heard = self._heard  # read now: the thrown-away reply sets it before letting go
            so_far = heard[1] if heard is not None and heard[0] == history else ""
            use = self.chat.prime(history, token, style.persona, style.instruction, so_far)
            if use is not None:
                log.debug("primed the chat model: %d tokens cached, %d evaluated", use.cached, use.new)

        self.priming = start_idle(self.lease, "cascade-prime", work)

    def speed_left(self, speed: float) -> float:
        """What Piper's length scale does not do of this speed (outside 0.87-1.15x it is not
        accurate, see models.cascade.tts), for the style chain to make up."""
        return speed / self.tts.length_scale(speed)[1]

    def respond(self, turn: UserTurn, style: Style, token: CancelToken) -> Iterator[EngineEvent]:
        clauses: queue.Queue = queue.Queue()

        def write(events: queue.Queue) -> None:
            self._pace.begin()
            self._write(turn, style, token, events, clauses)

        def speak(events: queue.Queue) -> None:
            self._speak(style, token, events, clauses)

        for event in start_reply(self.lease, token, "cascade", write, speak):
            handed = time.perf_counter()
            yield event
            if isinstance(event, ReplyAudio) and not token.cancelled:
                # Back here once the caller has taken the audio in: styled and queued to play
                # (voice matching takes ~0.17 s per second of speech), so that is when it counts.
                self._pace.taken(len(event.samples) / event.rate, time.perf_counter() - handed)

    # ---- workers ------------------------------------------------------------------------

    def _write(
        self, turn: UserTurn, style: Style, token: CancelToken, events: queue.Queue, clauses: queue.Queue
    ) -> None:
        try:
            if turn.verbatim is not None:
                splitter = ClauseSplitter()
                for clause in [*splitter.push(turn.verbatim), *splitter.flush()]:
                    if clause:
                        clauses.put((clause, time.perf_counter()))
                return
            question = turn.text
            if question is None:
                t0 = time.perf_counter()
                try:
                    question = self.asr.transcribe_turn(turn.audio, cancelled=lambda: token.cancelled)
                except Cancelled:
                    events.put(ReplyDone(EndReason.CANCELLED))
                    return
                self._heard = (turn.history, question)
                events.put(StageTime("asr", time.perf_counter() - t0))
            events.put(TranscriptFinal(question))
            if not question.strip() or token.cancelled:
                events.put(ReplyDone(EndReason.EMPTY if not question.strip() else EndReason.CANCELLED))
                return
            messages = self.chat.build_messages(turn.history, question, style.persona, style.instruction)
            t0 = time.perf_counter()
            splitter = ClauseSplitter(first_phrase_chars=self._pace.first_phrase_chars())
            written = []
            for i, delta in enumerate(self.chat.stream(messages, token)):
                if i == 0:
                    events.put(StageTime("llm_first_token", time.perf_counter() - t0))
                    if (use := self.chat.prompt_use) is not None:
                        events.put(PromptTokens(use.cached, use.new))
                written.append(delta)
                if self.streaming:
                    ready = splitter.push(delta)
                    if not ready and self._pace.running_short(len(splitter.pending_text)):
                        ready = splitter.cut(_EARLY_CUT_WORDS)
                    for clause in ready:
                        clauses.put((clause, time.perf_counter()))
                        # On two cores the chat model and the voice slow each other down: the
                        # first clause's synthesis is the latency, and a later one that is late
                        # leaves a gap after a short clause. So the voice has the cores while it
                        # synthesizes; the model, far ahead of speech, writes on in between.
                        _wait_synthesized(clauses, token)
            events.put(StageTime("llm_total", time.perf_counter() - t0))
            tail = splitter.flush() if self.streaming else [speakable("".join(written))]
            for clause in tail:
                if clause:
                    clauses.put((clause, time.perf_counter()))
        except Exception as exc:  # reported before the voice's own end, which follows _END
            log.exception("the recognizer or the chat model failed")
            events.put(ReplyDone(EndReason.ERROR, str(exc) or type(exc).__name__))
        finally:
            clauses.put(_END)  # the voice ends when it reaches this, whatever happened here

    def _speak(self, style: Style, token: CancelToken, events: queue.Queue, clauses: queue.Queue) -> None:
        spoken = 0
        first_made_at: float | None = None  # when the first clause's audio was all made
        second_pending = False  # the time to the second clause's audio is still to be learned
        held: list[EngineEvent] = []  # the first clause's audio, and what follows it, while held back
        release_at: float | None = None

        def release() -> None:
            nonlocal held, release_at
            if held and first_made_at is not None:  # how long the first clause waited: latency spent
                events.put(StageTime("first_clause_hold", time.perf_counter() - first_made_at))
            for event in held:
                events.put(event)
            held, release_at = [], None

        def put(event: EngineEvent) -> None:
            """Out now, or behind held audio: the next clause's text never runs ahead of it."""
            if held:
                held.append(event)
            else:
                events.put(event)

        while True:
            try:
                wait = None if release_at is None else max(0.0, release_at - time.perf_counter())
                item = clauses.get(timeout=wait)
            except queue.Empty:  # held long enough: the first clause goes out
                release()
                continue
            try:
                if item is _END or token.cancelled:
                    if not token.cancelled:
                        release()
                    events.put(ReplyDone(EndReason.COMPLETE if spoken else EndReason.EMPTY))
                    return
                clause, ready_at = item
                put(ReplyText(clause + " "))
                mid_sentence = clause.rstrip()[-1:] not in ".!?…"
                started, audio_seconds = time.perf_counter(), 0.0
                for samples in self.tts.synthesize(clause, style.speed, style.expressiveness):
                    if token.cancelled:
                        break
                    if mid_sentence:
                        samples = trim_tail(samples, self.tts.rate)
                    if not spoken:
                        events.put(StageTime("tts_first_audio", time.perf_counter() - ready_at))
                    spoken += 1
                    seconds = len(samples) / self.tts.rate
                    audio_seconds += seconds
                    self._pace.made(seconds)
                    audio = ReplyAudio(samples, self.tts.rate)
                    if first_made_at is None:  # the first clause: decided on once it is all made
                        held.append(audio)
                        continue
                    if second_pending:
                        second_pending = False
                        self._pace.next_made(time.perf_counter() - first_made_at)
                    release()
                    events.put(audio)
                else:
                    self._pace.spoke(len(clause), time.perf_counter() - started, audio_seconds)
                if first_made_at is None and held and not token.cancelled:
                    first_made_at, second_pending = time.perf_counter(), True
                    hold = self._pace.hold_for(audio_seconds)
                    if hold > 0:
                        release_at = first_made_at + hold
                        self._pace.plan(release_at, audio_seconds)
                    else:
                        release()
            except Exception as exc:
                log.exception("speech synthesis failed")
                events.put(ReplyDone(EndReason.ERROR, f"speech synthesis failed: {exc}"))
                return
            finally:
                clauses.task_done()  # this clause is synthesized (see _wait_synthesized)


# Each start loads a model where the placement says and, on a GPU, runs it once: faster-whisper
# finds out that CUDA's cuBLAS is missing only when it first computes.


def start_asr(model_dir: Path, threads: int, placement: Placement) -> WhisperAsr:
    asr = WhisperAsr(model_dir, threads=threads, device=placement.device, compute_type=placement.number_format)
    if placement.on_gpu:
        asr.transcribe(np.zeros(16000, np.float32))
    return asr


def start_chat(gguf: Path, config: ChatConfig, placement: Placement) -> ChatModel:
    from dataclasses import replace

    return ChatModel(gguf, replace(config, gpu_layers=placement.gpu_layers, flash_attention=placement.flash_attention))


def start_tts(voice_dir: Path, threads: int, placement: Placement) -> PiperTts:
    tts = PiperTts(voice_dir, threads=threads, providers=placement.providers)
    if placement.on_gpu:
        for _ in tts.synthesize("Hi."):
            pass
    return tts
