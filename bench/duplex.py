"""bench duplex: listening while speaking in a simulated laptop room (speaker echo through a room
impulse response into the microphone), with WebRTC echo cancellation, real TTS voices on both sides.

Figures: echo reduction during assistant-only speech; false barge-ins over assistant replies with
no user speech; barge-in detection rate and latency (user onset -> output silent); word error of the
user's speech recognized while the assistant talks vs alone; underruns in a long conversation.
"False pauses": replies held for a moment by something that was not a barge-in (then resumed)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import soxr

from core.audio.echo import EchoCanceller
from core.audio.io import load_voice
from core.audio.measure import echo_reduction_db
from core.audio.playback import PlaybackQueue
from core.audio.room import RoomConfig
from core.audio.simulated import SimulatedRoomLoop, VoiceTrack
from bench.stats import peak_rss_mb, summary, word_error
from core.audio.turn_end import load_turn_judge
from core.engines import load_cascade
from core.audio.vad import load_vad
from core.events import ReplyFinished
from core.session import Session
from core.turns import TurnConfig
from core.audio.format import FRAME, RATE

QUESTIONS = Path(__file__).resolve().parents[1] / "assets" / "questions"
DEVICE_RATE = 48000
LONG_ASKS = [
    "Tell me a long story about a fox who wanted to fly.",
    "Describe a walk through a busy market on a sunny morning.",
    "Tell me a long story about a dragon who learns to bake bread.",
    "Explain how a bicycle works, step by step.",
    "Tell me about your favourite season and why you like it.",
]
INTERRUPTIONS = [
    "Wait, stop. What is the capital of Spain?",
    "Sorry to cut in, what time is it?",
    "Hold on, can you speak more slowly?",
    "Stop please. Tell me a joke instead.",
]
DOUBLE_TALK = [
    "I would like to book a table for two people tomorrow evening.",
    "Please remind me to call my sister after lunch.",
    "The weather looks lovely, let us go for a walk in the park.",
    "Could you play some quiet music while I read my book?",
    "My favourite fruit is a ripe mango in the summer.",
]
ROOMS = [  # laptop-like rooms with different echo paths
    RoomConfig(delay_ms=40, rt60_s=0.3, echo_gain_db=-6.0, seed=1),
    RoomConfig(delay_ms=120, rt60_s=0.4, echo_gain_db=-3.0, seed=2),
    RoomConfig(delay_ms=200, rt60_s=0.25, echo_gain_db=-6.0, nonlinearity=0.3, seed=3),
    RoomConfig(delay_ms=15, rt60_s=0.5, echo_gain_db=-9.0, seed=4),
]


class _GapLog(PlaybackQueue):
    """The playback queue, noting each run of underruns: in which reply (counted from 1), how far
    into it it came (seconds of the reply played) and how many device reads it lasted."""

    def __init__(self, device_rate: int) -> None:
        super().__init__(device_rate)
        self.gaps: list[dict] = []
        self._open: dict | None = None
        self.replies = 0

    def begin_reply(self) -> None:
        self.replies += 1
        super().begin_reply()

    def read(self, n: int) -> np.ndarray:
        before = self.underruns
        out = super().read(n)
        if self.underruns > before:
            if self._open is None:
                self._open = {"reply": self.replies, "at_s": round(self.played / self.device_rate, 3), "reads": 0}
                self.gaps.append(self._open)
            self._open["reads"] += 1
        else:
            self._open = None
        return out


class _Conversation:
    def __init__(self, engine, vad, room: RoomConfig, speed: float = 1.0) -> None:
        vad.reset()
        self.playback = _GapLog(DEVICE_RATE)
        self.loop = SimulatedRoomLoop(self.playback, room, EchoCanceller(), speed=speed)
        self.finished: list[ReplyFinished] = []
        self.session = Session(
            engine,
            vad,
            self.playback,
            TurnConfig(),
            duplex=True,
            judge=load_turn_judge(),
            on_event=lambda e: isinstance(e, ReplyFinished) and self.finished.append(e),
        )
        self.track = VoiceTrack()
        self.tick = 0

    def run(self, until, seconds, on_tick=None) -> None:
        def tick(t):
            self.tick = t
            if on_tick:
                on_tick(t)

        self.loop.run(self.session.feed, self.track, until, seconds, on_tick=tick)


def _speak(tts, text: str) -> np.ndarray:
    audio = np.concatenate(list(tts.synthesize(text)))
    audio = soxr.resample(audio, tts.rate, RATE).astype(np.float32)
    loud = np.flatnonzero(np.abs(audio) > 0.02)
    return audio[loud[0] : loud[-1] + 1]


def _echo_and_false_barge_ins(engine, vad, replies: int) -> dict:
    """Whole replies with the user silent: every interruption is a false one."""
    files = sorted(QUESTIONS.glob("q*.flac"))
    erle, false_barge_ins, completed, pauses = [], 0, 0, 0
    for i in range(replies):
        room = ROOMS[i % len(ROOMS)]
        c = _Conversation(engine, vad, room)
        question = load_voice(files[i % len(files)])
        c.track.add(question, 0)
        c.run(lambda: len(c.finished) >= 1, 90)
        false_barge_ins += c.session.interruptions
        pauses += c.session.holds
        completed += bool(c.finished) and c.finished[0].reason == "complete"
        start = len(question) + RATE // 2  # after the question: the mic hears only the echo
        echo = c.loop.room.echo_only[start:]
        heard = c.loop.heard_audio()[start:]
        if len(echo) > 2 * RATE and np.abs(echo).max() > 1e-3:
            erle.append(echo_reduction_db(echo, heard, RATE, skip_s=0.0))
    return {
        "replies": replies,
        "completed": completed,
        "false_barge_ins": false_barge_ins,
        "false_pauses": pauses,
        "echo_reduction_db": summary(erle),
    }


def _barge_ins(engine, vad, tts, count: int) -> dict:
    detected, latencies = 0, []
    for i in range(count):
        c = _Conversation(engine, vad, ROOMS[i % len(ROOMS)])
        c.track.add(_speak(tts, LONG_ASKS[i % len(LONG_ASKS)]), 0)
        cut_in = _speak(tts, INTERRUPTIONS[i % len(INTERRUPTIONS)])
        placed: dict[str, int] = {}
        play_for = DEVICE_RATE * (1.0 + 0.25 * (i % 4))  # interrupt at different moments

        def interrupt(tick: int) -> None:
            if "at" not in placed and c.playback.played > play_for:
                placed["at"] = (tick + 1) * FRAME
                c.track.add(cut_in, placed["at"])

        def stopped() -> bool:
            return any(f.reason == "interrupted" for f in c.finished) or (
                "at" in placed and c.tick * FRAME > placed["at"] + 3 * RATE
            )

        c.run(stopped, 90, on_tick=interrupt)
        if "at" not in placed:
            continue  # the reply ended before the moment to interrupt: not an attempt
        c.session.close()  # its threads end before the models are torn down
        if not any(f.reason == "interrupted" for f in c.finished):
            continue
        detected += 1
        played = c.loop.played_audio()
        onset = placed["at"] * DEVICE_RATE // RATE
        after = played[onset:]
        block = DEVICE_RATE // 100
        silent = next((i for i in range(0, len(after), block) if not after[i:].any()), len(after))
        latencies.append(silent / DEVICE_RATE * 1000)
    attempts = count
    return {
        "interruptions": attempts,
        "detected": detected,
        "detection_rate": round(detected / max(1, attempts), 3),
        "latency_ms": summary(latencies),
    }


def _double_talk(engine, tts) -> dict:
    """The user's sentence while the assistant talks, vs the same sentence alone, through the
    same room and canceller; recognized by the engine's own speech recognition from the
    canceller's linear output, the one recognition listens to (AEC3's suppressor carves the
    user's voice in double talk), alone as well as in double talk."""
    assistant = np.concatenate(list(tts.synthesize(" ".join(LONG_ASKS))))
    clean_errors, talk_errors = [], []
    for i, sentence in enumerate(DOUBLE_TALK):
        user = _speak(tts, sentence)
        room = ROOMS[i % len(ROOMS)]
        results = []
        for with_assistant in (False, True):
            playback = PlaybackQueue(DEVICE_RATE)
            loop = SimulatedRoomLoop(playback, room, EchoCanceller(), speed=1e6)  # no session: no need for real time
            if with_assistant:
                playback.begin_reply()
                playback.write(assistant, tts.rate)
            track = VoiceTrack()
            start = 2 * RATE  # the canceller has heard 2 s of the assistant alone first
            track.add(user, start)
            loop.run(lambda *frame: None, track, lambda: True, (start + len(user)) / RATE + 0.5)
            heard = loop.heard_linear_audio()[start - RATE // 5 : start + len(user) + RATE // 5]
            results.append(word_error(sentence, engine.asr.transcribe(heard)))
        clean_errors.append(results[0])
        talk_errors.append(results[1])
    return {
        "sentences": len(DOUBLE_TALK),
        "word_error_alone": round(float(np.mean(clean_errors)), 3),
        "word_error_double_talk": round(float(np.mean(talk_errors)), 3),
        "difference_points": round(100 * float(np.mean(talk_errors) - np.mean(clean_errors)), 1),
    }


def _conversation_underruns(engine, vad, tts, minutes: float, speed: float) -> dict:
    """A long conversation: a question, its whole reply, a short gap, the next question..."""
    files = sorted(QUESTIONS.glob("q*.flac"))
    c = _Conversation(engine, vad, ROOMS[0], speed=speed)
    total_ticks = int(minutes * 60 * 100)
    state = {"next": 0, "asked": 0, "wait_until": 0}

    def script(tick: int) -> None:
        if tick >= state["wait_until"] and len(c.finished) >= state["asked"] and c.session.state == "listening":
            question = load_voice(files[state["next"] % len(files)])
            c.track.add(question, (tick + 1) * FRAME)
            state["next"] += 1
            state["asked"] += 1
            state["wait_until"] = tick + 1 + len(question) // FRAME + 150  # at least 1.5 s before the next

    c.run(lambda: c.tick >= total_ticks, minutes * 60 + 5, on_tick=script)
    c.session.close()  # its threads end before the models are torn down
    return {
        "simulated_minutes": minutes,
        "clock_speed": speed,
        "turns": state["asked"],
        "replies_completed": sum(f.reason == "complete" for f in c.finished),
        "underruns": c.playback.underruns,
        "gaps": c.playback.gaps,  # each run of underruns: where in its reply, how many reads
        "pauses": c.session.holds,
        "response_ms": summary([lat.response for lat in c.session.latencies]),
        # Latency spent on purpose: the first clause held until the next is due (models/cascade).
        "first_clause_hold_ms": summary([lat.stages.get("first_clause_hold", 0.0) for lat in c.session.latencies]),
    }


def run(turns: int | None = None, minutes: float = 10.0, speed: float = 1.0) -> dict:
    count = turns or 20
    t0 = time.perf_counter()
    engine = load_cascade()
    vad = load_vad()
    tts = engine.tts
    result = {"bench": "duplex", "rooms": [r.__dict__ for r in ROOMS]}
    result["assistant_only"] = _echo_and_false_barge_ins(engine, vad, count)
    result["barge_in"] = _barge_ins(engine, vad, tts, count)
    result["double_talk"] = _double_talk(engine, tts)
    result["conversation"] = _conversation_underruns(engine, vad, tts, minutes, speed)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["peak_rss_mb"] = peak_rss_mb()
    return result
