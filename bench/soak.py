"""bench soak: a long natural conversation and a barrage of interruptions on the real models.

Soak: two speakers take turns (1-60 s turns with pauses, fillers and a voice in the background),
each turn played into the simulated room once the previous reply has ended, except that every
few turns the speaker cuts in over the reply, and the style changes now and then. Time is the
conversation's own (a virtual clock): it runs as fast as the machine can recognise, write and
speak, and waits for the engine whenever a reply would otherwise run dry, so an hour takes a
fraction of an hour. Then stress: hundreds of typed questions, each cut off at once by a stop
or by speech, and a last spoken question that must be answered.

Reported: turns asked and answered and how each reply ended, errors and exceptions on any thread,
resident memory and thread count after the warm-up and at the end, and the CPU it ran on.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.audio.echo import EchoCanceller
from core.audio.playback import PlaybackQueue
from core.audio.room import RoomConfig
from core.audio.simulated import SimulatedRoomLoop, VirtualClock
from bench.stats import cpu_features, summary
from core.audio.turn_end import load_turn_judge
from core.events import ReplyEnd, ReplyFinished, State, StateChanged
from core.session import Session
from core.style.presets import PresetStore
from core.style.resolve import style_from_preset
from core.turns import TurnConfig
from core.audio.format import FRAME, RATE

DEVICE_RATE = 48000
BARGE_EVERY = 4  # every 4th reply is cut into ...
BARGE_AFTER_S = 1.5  # ... this far into its sound
STYLE_EVERY = 5  # a new preset every 5 turns
WARM_UP_MINUTES = 5.0  # memory and threads are compared from here on
# Resident memory swings by 30-60 MB from minute to minute (a long turn's buffers, a reply's
# voice): growth is the median of the last minutes' samples against the median of the first
# minutes' after the warm-up, each window this long, sampled every simulated minute.
MEMORY_WINDOW_MINUTES = 10.0
PATIENCE_S = 3.0  # after a turn the speaker waits this long for the reply to start before going on
STALL_S = 120.0  # the engine gave no sound for this long (wall clock): stuck
PROGRESS_MINUTES = 5  # a progress line on stderr this often (simulated minutes)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def held_mb() -> float:
    """Resident memory once the C allocator has handed its free pages back (glibc's malloc_trim):
    what the process holds, without what it freed and the allocator kept for reuse. Elsewhere
    than glibc, the resident memory as it is."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    return rss_mb()


def window_growth_mb(samples: list[tuple[float, float]], window_s: float = MEMORY_WINDOW_MINUTES * 60) -> dict:
    """Resident memory over the first and the last `window_s` of (simulated seconds, MB)
    samples: the median of each and the growth between them."""
    if not samples:
        return {"first_window": float("nan"), "last_window": float("nan"), "growth": float("nan")}
    t = np.array([s[0] for s in samples])
    mb = np.array([s[1] for s in samples])
    first = float(np.median(mb[t <= t[0] + window_s]))
    last = float(np.median(mb[t >= t[-1] - window_s]))
    return {"first_window": round(first, 1), "last_window": round(last, 1), "growth": round(last - first, 1)}


def slope_mb_per_10_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (simulated seconds, MB) samples, in MB per 10 minutes."""
    if len(samples) < 2:
        return float("nan")
    t, mb = np.array(samples).T
    return float(np.polyfit(t / 600, mb, 1)[0])


@dataclass
class _Plan:
    """What the speaker does next, driven by the loop's ticks."""

    turns: list[np.ndarray]
    gaps: list[np.ndarray]
    index: int = 0  # the turn being said or next to say
    cursor: int = 0  # position in the current piece
    in_gap: bool = False
    waiting: bool = False  # the session took the turn: wait for its reply to end (or cut in)
    sound_at: float | None = None  # virtual time the awaited reply first sounded
    said: int = 0  # turns whose audio has been played to the end
    taken: set[int] = field(default_factory=set)  # turns the session took after they were said
    cut_mid_turn: int = 0  # the session took the turn while it was still being said
    said_at: float | None = None  # virtual time the last turn's audio ended
    spans: dict[int, list[float]] = field(default_factory=dict)  # turn -> [began, ended] (virtual s)

    @property
    def over(self) -> bool:
        return self.index >= len(self.turns)


class _Speaker:
    """The user's side: the turn's audio frame by frame, the gap after it, then silence while
    waiting; every BARGE_EVERY-th reply is cut into BARGE_AFTER_S after it starts sounding. As a
    person does: a reply that starts while they are still in the middle of their turn does not
    stop them (they talk on, over it), and after a turn they wait up to PATIENCE_S for the answer
    before they go on."""

    end = 0

    def __init__(self, plan: _Plan, clock: VirtualClock, last_turn_by_s: float = float("inf")) -> None:
        self.plan, self.clock = plan, clock
        self.last_turn_by_s = last_turn_by_s  # no turn starts after this (conversation time)
        self.replies = 0
        self.barge_ins = 0

    def frame(self, _start: int, n: int = FRAME) -> np.ndarray:
        plan = self.plan
        out = np.zeros(n, np.float32)
        if plan.over:
            return out
        if plan.waiting:
            barging = (
                self.replies % BARGE_EVERY == BARGE_EVERY - 1
                and plan.sound_at is not None
                and self.clock() - plan.sound_at >= BARGE_AFTER_S
            )
            if not barging:
                return out
            self.barge_ins += 1
            if plan.in_gap or plan.cursor > 0:  # not already at the next turn's start
                plan.index += 1  # the next turn, said over the reply
            plan.waiting, plan.sound_at, plan.in_gap, plan.cursor = False, None, False, 0
            self.replies += 1
            if plan.over:
                return out
        if not plan.in_gap and plan.cursor == 0:
            if self.clock() >= self.last_turn_by_s:
                del plan.turns[plan.index :]  # the conversation has lasted its time: this turn is not said
                return out
            unanswered = plan.index > 0 and plan.index - 1 not in plan.taken
            if unanswered and plan.said_at is not None and self.clock() - plan.said_at < PATIENCE_S:
                return out  # still waiting for the answer to the last turn
        piece = plan.gaps[plan.index] if plan.in_gap else plan.turns[plan.index]
        if not plan.in_gap and plan.cursor == 0:
            plan.spans[plan.index] = [self.clock(), float("nan")]
        part = piece[plan.cursor : plan.cursor + n]
        out[: len(part)] = part
        plan.cursor += n
        if plan.cursor >= len(piece):
            plan.cursor = 0
            if not plan.in_gap:
                plan.said, plan.said_at = plan.index + 1, self.clock()
                plan.spans[plan.index][1] = plan.said_at
            if plan.in_gap:
                plan.in_gap, plan.index = False, plan.index + 1
            else:
                plan.in_gap = plan.index < len(plan.gaps)
                if not plan.in_gap:
                    plan.index += 1
        return out

    def turn_taken(self) -> None:
        """The session took the turn: the last turn said (then the speaker waits for the reply),
        or the one being said, too early (then the speaker talks on)."""
        plan = self.plan
        if not plan.in_gap and plan.cursor > 0:
            plan.cut_mid_turn += 1
            return
        if plan.said > 0 and plan.said - 1 not in plan.taken:
            plan.taken.add(plan.said - 1)
        plan.waiting = True

    def reply_sounding(self) -> None:
        if self.plan.waiting and self.plan.sound_at is None:
            self.plan.sound_at = self.clock()

    def reply_ended(self) -> None:
        if self.plan.waiting:
            self.plan.waiting, self.plan.sound_at = False, None
            self.replies += 1


def soak(engine, vad, minutes: float, seed: int = 0) -> dict:
    from bench.natural import natural_conversation

    conversation = natural_conversation(minutes=minutes, seed=seed)
    rng = np.random.default_rng(seed)
    gaps = [conversation.gap(i, float(rng.uniform(0.8, 3.0))) for i in range(len(conversation.turns) - 1)]
    plan = _Plan([t.audio for t in conversation.turns], gaps)
    clock = VirtualClock()
    # The material is as long as asked for in speech alone; the replies make the conversation
    # longer, so no new turn starts once the conversation has lasted `minutes`.
    speaker = _Speaker(plan, clock, last_turn_by_s=minutes * 60)
    built_in = PresetStore(Path(tempfile.mkdtemp(prefix="soak-presets-")))
    names = [p.name for p in built_in.built_ins()]
    finished: list[ReplyFinished] = []
    trace: list[tuple[float, str]] = []  # what the session did, when (to account for turns not taken)
    lock = threading.Lock()

    def on_event(event) -> None:
        with lock:
            if isinstance(event, StateChanged):
                trace.append((clock(), str(event.state)))
                if event.state == State.THINKING:
                    speaker.turn_taken()
                elif event.state == State.SPEAKING:
                    speaker.reply_sounding()
            elif isinstance(event, ReplyFinished):
                trace.append((clock(), f"reply {event.reason}: {event.transcript[-40:]!r}"))
                finished.append(event)
                if event.reason != ReplyEnd.DISCARDED:
                    speaker.reply_ended()
                    if len(finished) % STYLE_EVERY == 0:
                        session.set_style(
                            style_from_preset(built_in.get(names[len(finished) // STYLE_EVERY % len(names)]))
                        )

    playback = PlaybackQueue(DEVICE_RATE, clock=clock)
    loop = SimulatedRoomLoop(playback, RoomConfig(), EchoCanceller(), record=False)
    vad.reset()
    session = Session(
        engine, vad, playback, TurnConfig(), on_event=on_event, duplex=True, clock=clock, judge=load_turn_judge()
    )
    warm: dict[str, float] = {}
    samples: list[tuple[float, float]] = []  # (simulated s, resident MB) every simulated minute after warm-up
    stalled = []

    def on_tick(tick: int) -> None:
        waited = time.perf_counter()
        while session.starving:  # the engine is behind: the conversation's time waits for it
            if time.perf_counter() - waited > STALL_S:
                stalled.append(clock())
                session.stop()
                break
            time.sleep(0.001)
        if not warm and clock() >= WARM_UP_MINUTES * 60:
            gc.collect()
            warm.update(rss_mb=rss_mb(), threads=threading.active_count(), at_s=clock())
            samples.append((clock(), warm["rss_mb"]))
            warm.update(held_mb=held_mb())
        if warm and tick % (60 * 100) == 0 and clock() > warm["at_s"]:
            samples.append((clock(), rss_mb()))  # every simulated minute
        if tick % (PROGRESS_MINUTES * 60 * 100) == 0 and tick:
            # A line on stderr every few simulated minutes: a run stopped early still tells.
            print(
                json.dumps(
                    {
                        "soak_minutes": round(clock() / 60, 1),
                        "wall_s": round(time.perf_counter() - t0, 1),
                        "turn": plan.index,
                        "turns": len(plan.turns),
                        "replies_ended": len(finished),
                        "rss_mb": round(rss_mb(), 1),
                        "threads": threading.active_count(),
                    }
                ),
                file=sys.stderr,
                flush=True,
            )

    quiet = {"ticks": 0}

    def done() -> bool:
        quiet["ticks"] = quiet["ticks"] + 1 if plan.over and session.state == State.LISTENING else 0
        return quiet["ticks"] > 300

    t0 = time.perf_counter()
    loop.run(session.feed, speaker, done, max_seconds=minutes * 60 * 3, on_tick=on_tick, clock=clock)
    wall = time.perf_counter() - t0
    session.close()
    time.sleep(0.5)
    gc.collect()
    reasons = {str(r): n for r, n in sorted(session.replies_ended.items())}
    answered = sum(f.reason in (ReplyEnd.COMPLETE, ReplyEnd.INTERRUPTED) for f in finished)
    end = {"rss_mb": rss_mb(), "threads": threading.active_count()}
    end["held_mb"] = held_mb()
    return {
        "conversation_minutes": round(clock() / 60, 1),
        "wall_seconds": round(wall, 1),
        "faster_than_real_time": round(clock() / wall, 2),
        "turns_asked": len(plan.turns),
        # Every turn is taken after it was said, or ran into the next turn (no reply started
        # within PATIENCE_S after it); a take while the turn was still being said was too early
        # (the speaker talked on over it).
        "turns_taken": len(plan.taken),
        "turns_run_together": len(plan.turns) - len(plan.taken),
        "turns_not_taken": [_account(i, plan, trace) for i in sorted(set(range(len(plan.turns))) - plan.taken)],
        "cut_mid_turn": plan.cut_mid_turn,
        "barge_ins": speaker.barge_ins,
        "replies_started": session.replies_started,
        "replies_ended": reasons,
        "answered": answered,
        "errors": [f.detail for f in finished if f.reason == ReplyEnd.ERROR],
        # How long a reply waited for the previous one's workers to let go of the models.
        "handover_ms": summary([lat.stages["handover"] for lat in session.latencies if "handover" in lat.stages]),
        # What each heard reply's prompt found in the chat model's cache and what it evaluated
        # after the turn (the engine prepares the next prompt while the user speaks).
        "prompt_tokens_new": summary([lat.prompt_tokens["new"] for lat in session.latencies if lat.prompt_tokens]),
        "prompt_tokens_cached": summary(
            [lat.prompt_tokens["cached"] for lat in session.latencies if lat.prompt_tokens]
        ),
        "first_token_ms": summary(
            [lat.stages["llm_first_token"] for lat in session.latencies if "llm_first_token" in lat.stages]
        ),
        "stalls": stalled,
        "memory_mb": {
            # The target's figure: the last minutes' median against the first minutes' after
            # the warm-up (see MEMORY_WINDOW_MINUTES); the single readings follow it.
            **window_growth_mb(samples),
            "after_warm_up": round(warm.get("rss_mb", float("nan")), 1),
            "end": round(end["rss_mb"], 1),
            "end_minus_after_warm_up": round(end["rss_mb"] - warm.get("rss_mb", end["rss_mb"]), 1),
            # The same with the allocator's free pages handed back at both points: growth here is
            # memory still held; growth only above is freed memory the allocator kept.
            "held_after_warm_up": round(warm.get("held_mb", float("nan")), 1),
            "held_end": round(end["held_mb"], 1),
            "held_growth": round(end["held_mb"] - warm.get("held_mb", end["held_mb"]), 1),
            # The trend over the conversation (resident memory every minute): a leak keeps
            # climbing, the allocator's reuse levels off.
            "slope_per_10_min": round(slope_mb_per_10_min(samples), 1),
        },
        "threads": {"after_warm_up": warm.get("threads"), "end": end["threads"]},
    }


def _account(turn: int, plan: _Plan, trace: list[tuple[float, str]]) -> dict:
    """A turn the session did not take in time: when it was said, and what the session did from
    a second before it until the speaker's patience ran out."""
    began, ended = plan.spans.get(turn, [float("nan"), float("nan")])
    until = ended + PATIENCE_S if ended == ended else float("inf")
    return {
        "turn": turn,
        "said_s": [round(began, 2), round(ended, 2)],
        "session": [f"{t:.2f} {what}" for t, what in trace if began - 1.0 <= t <= until],
    }


def stress(engine, vad, rounds: int = 300, seed: int = 1) -> dict:
    """Typed questions cut off at once, alternately by the stop button and by speech over them,
    at random short delays; then one spoken question, which must be answered."""
    from bench.natural import natural_conversation

    rng = np.random.default_rng(seed)
    question = natural_conversation(n_turns=1, seed=seed, background=False).turns[0].audio
    burst = question[: RATE // 2]
    playback = PlaybackQueue(DEVICE_RATE)
    loop = SimulatedRoomLoop(playback, RoomConfig(), EchoCanceller(), record=False)
    from core.audio.simulated import VoiceTrack

    track = VoiceTrack()
    finished: list[ReplyFinished] = []
    vad.reset()
    session = Session(
        engine,
        vad,
        playback,
        TurnConfig(),
        on_event=lambda e: finished.append(e) if isinstance(e, ReplyFinished) else None,
        duplex=True,
        judge=load_turn_judge(),
    )
    runner = threading.Thread(
        target=loop.run, args=(session.feed, track, lambda: False, 24 * 3600.0), name="stress-audio", daemon=True
    )
    runner.start()
    threads_before = threading.active_count()
    gc.collect()
    rss_before = rss_mb()
    waits = []
    t0 = time.perf_counter()
    for i in range(rounds):
        session.say(f"Tell me about the number {i}.")
        time.sleep(float(rng.uniform(0.0, 0.3)))
        t = time.perf_counter()
        if i % 2:
            session.stop()
        else:
            track.add(burst, (loop.ticks + 2) * FRAME)
        waits.append((time.perf_counter() - t) * 1000)
    time.sleep(1.0)
    session.stop()
    for _ in range(100):  # the last cancelled reply lets go within a step
        if engine.lease.free:
            break
        time.sleep(0.05)
    before_last = len(finished)
    track.add(question, (loop.ticks + 2) * FRAME)
    deadline = time.perf_counter() + len(question) / RATE + 90
    while time.perf_counter() < deadline and not any(f.reason == ReplyEnd.COMPLETE for f in finished[before_last:]):
        time.sleep(0.05)
    last = [f for f in finished[before_last:] if f.reason != ReplyEnd.DISCARDED]
    loop.stop()
    runner.join(10)
    session.close()
    time.sleep(0.5)
    gc.collect()
    return {
        "rounds": rounds,
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "call_ms": summary(waits, 2),  # how long stop() or the next frame took to return
        "last_question": str(last[-1].reason) if last else "not answered",
        "threads": {"before": threads_before, "after": threading.active_count()},
        "memory_mb": {"before": round(rss_before, 1), "after": round(rss_mb(), 1)},
        "replies_ended": {str(r): n for r, n in sorted(session.replies_ended.items())},
    }


def run(minutes: float = 60.0, rounds: int = 300) -> dict:
    from core.engines import load_cascade
    from core.audio.vad import load_vad

    errors: list[str] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: errors.append(
        f"{args.thread.name if args.thread else '?'}: {type(args.exc_value).__name__}: {args.exc_value}"
    )
    try:
        engine, vad = load_cascade(), load_vad()
        result = {
            "bench": "soak",
            "cpu": cpu_features(),
            "soak": soak(engine, vad, minutes),
            "stress": stress(engine, vad, rounds),
        }
    finally:
        threading.excepthook = previous
    result["thread_exceptions"] = errors
    return result
