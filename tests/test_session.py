"""The turn loop: a spoken question played into the session in real time, the reply out of a
simulated speaker, on the real packaged models."""

import threading
import time

import numpy as np
import soxr

from core.audio.playback import PlaybackQueue
from core.audio.simulated import SimulatedRoomLoop
from core.events import AssistantText, ReplyFinished, StateChanged
from core.session import Session
from core.file_conversation import talk_once
from core.turns import TurnConfig
from tests.conftest import word_error
import pytest

pytestmark = pytest.mark.models  # loads the real models (see the marker in pyproject.toml)


def to16k(audio: np.ndarray, rate: int) -> np.ndarray:
    return soxr.resample(audio, rate, 16000).astype(np.float32)


def test_round_trip_spoken_question_and_spoken_reply(stack, speak):
    engine, vad = stack
    question = "Which planet is closest to the sun?"
    states = []
    result = talk_once(
        engine, vad, speak(question), on_event=lambda e: isinstance(e, StateChanged) and states.append(e.state)
    )
    assert result.reason == "complete"
    assert word_error(question, result.transcript) <= 0.10
    assert result.reply_text.strip()
    heard = engine.asr.transcribe(to16k(result.reply_audio, result.rate))
    assert word_error(result.reply_text, heard) <= 0.25, (result.reply_text, heard)
    lat = result.latency
    assert lat is not None and lat.response > 0  # how long: bench latency
    # A finished question: ended once the judge said so, after at least the short silence.
    assert TurnConfig().complete_after_ms - 40 <= lat.end_of_turn < TurnConfig().end_of_turn_ms
    assert {"asr", "llm_first_token", "tts_first_audio"} <= set(lat.stages)
    assert states[:1] == ["listening"] and "hearing" in states and "speaking" in states and states[-1] == "listening"
    assert [m.role for m in result.history] == ["user", "assistant"]


def test_a_pause_inside_the_turn_does_not_answer_half_a_question(stack, speak):
    engine, vad = stack
    # 350 ms of silence: past the speculation point, short of the end of turn. On silence alone
    # (no end-of-turn model: a synthetic voice ends "Please tell me," as it ends a sentence, and
    # the model hears that; tests/test_turn_end.py holds the model to real cases).
    voice = np.concatenate(
        [
            speak("Please tell me,"),
            np.zeros(int(16000 * 0.35), np.float32),
            speak("what is the capital city of Italy?", lead_ms=0),
        ]
    )
    replies, states = [], []

    def on_event(e):
        if isinstance(e, ReplyFinished):
            replies.append(e)
        if isinstance(e, StateChanged):
            states.append(e.state)

    result = talk_once(engine, vad, voice, on_event=on_event, judge=False)
    assert result.reason == "complete"
    assert len(replies) == 1
    assert states.count("thinking") == 1  # the speculative reply at the pause was never shown
    # The turn holds both halves (the recognizer may mishear the country on a synthetic voice).
    assert "tell me" in result.transcript.lower() and "capital" in result.transcript.lower()


def test_stop_silences_the_reply_and_marks_it_interrupted(stack, speak):
    engine, vad = stack
    playback = PlaybackQueue(48000)
    loop = SimulatedRoomLoop(playback, room=None)
    finished = threading.Event()
    spoken = []

    def on_event(e):
        if isinstance(e, AssistantText):
            spoken.append(e.delta)
        if isinstance(e, ReplyFinished):
            finished.set()

    vad.reset()
    session = Session(engine, vad, playback, on_event=on_event)
    worker = threading.Thread(target=loop.run, args=(session.feed, np.zeros(0, np.float32), lambda: False, 60))
    worker.start()
    session.say("Tell me a long story about a fox who wanted to fly.")
    deadline = time.perf_counter() + 30
    while playback.first_sample_at is None and time.perf_counter() < deadline:
        time.sleep(0.005)
    assert playback.first_sample_at is not None
    time.sleep(1.2)
    n = len(loop.played_audio())
    session.stop()
    assert playback.queued_samples <= 48000 * 0.010, "more than a short fade is left"
    time.sleep(0.1)
    after = loop.played_audio()[n:]
    sounding = np.flatnonzero(after)
    # One block may have been on its way when stop came; then a fade of under 10 ms.
    assert len(sounding) and sounding[-1] < 480 + 48000 * 0.020, "sound went on after stop"
    assert finished.wait(30), "the stopped reply never ended"  # how fast: the sound above, and bench soak's stress
    loop.stop()
    worker.join()
    assert session.history[-1].role == "assistant" and session.history[-1].interrupted
    heard = session.history[-1].text.split()
    said = "".join(spoken).split()
    assert 0 < len(heard) < len(said) and said[: len(heard)] == heard  # cut to what was played
    assert session.state == "listening"


def test_typed_question_in_a_running_session(stack):
    engine, vad = stack
    playback = PlaybackQueue(16000)
    loop = SimulatedRoomLoop(playback, room=None)
    done = threading.Event()
    session = Session(engine, vad, playback, on_event=lambda e: isinstance(e, ReplyFinished) and done.set())
    feeder = threading.Thread(target=loop.run, args=(session.feed, np.zeros(0, np.float32), done.is_set, 30))
    feeder.start()
    session.say("What is the capital of France?")
    assert done.wait(30)
    feeder.join()
    assert "paris" in session.history[-1].text.lower()
    assert session.latencies and session.latencies[-1].response > 0


def test_style_changes_reach_the_next_reply(stack):
    """A pitch set between turns is heard in the next reply (and only from then on)."""
    from models.engine import Style

    engine, vad = stack
    playback = PlaybackQueue(22050)
    loop = SimulatedRoomLoop(playback, room=None)
    done = []
    session = Session(engine, vad, playback, on_event=lambda e: isinstance(e, ReplyFinished) and done.append(e))
    feeder = threading.Thread(target=loop.run, args=(session.feed, np.zeros(0, np.float32), lambda: len(done) >= 2, 60))
    feeder.start()
    session.say("Say the word hello.")
    while not done:
        time.sleep(0.05)
    first_end = len(loop.played_audio())
    session.set_style(Style(pitch_semitones=7.0))
    session.say("Say the word hello.")
    feeder.join()
    played = loop.played_audio()
    plain, raised = played[:first_end], played[first_end:]

    def f0(audio):
        import pyworld

        loud = np.flatnonzero(np.abs(audio) > 0.01)
        track, _ = pyworld.harvest(audio[loud[0] : loud[-1]].astype(np.float64), 22050, f0_floor=50, f0_ceil=500)
        assert (track > 0).sum() > 10, (len(audio), loud[0], loud[-1], done)
        return np.median(track[track > 0])

    assert np.abs(plain).max() > 0.05 and np.abs(raised).max() > 0.05, (len(plain), len(raised), done)
    shift = 12 * np.log2(f0(raised) / f0(plain))
    assert 4.0 < shift < 10.0, f"pitch moved {shift:.1f} semitones, expected about 7"


def test_a_natural_dialogue_is_answered_turn_by_turn(stack):
    """Two people taking turns, with pauses, fillers and hesitations inside their turns: the kind
    of input that once started, dropped and restarted replies until two of them decoded in one
    llama.cpp context at once. Every turn the session takes is answered, in order, and no model
    is ever entered by two threads (the guards would end a reply with an error)."""
    from bench.natural import SPEAKERS, lay_out, natural_turn, Conversation
    from core.file_conversation import talk

    engine, vad = stack
    rng = np.random.default_rng(5)
    scripts = [
        "How long should I boil an egg / if I want the yolk / still a little soft?",
        "What is the difference / between a crocodile / and an alligator?",
    ]
    turns = tuple(
        natural_turn(text, SPEAKERS[i * 5 % len(SPEAKERS)], rng, pause_s=(0.3, 0.45)) for i, text in enumerate(scripts)
    )
    dialogue = lay_out(Conversation(turns, (None,), 5, -65.0), 2.0)
    result = talk(engine, vad, dialogue.audio)
    reasons = [t.reason for t in result.turns]
    assert reasons and all(r == "complete" for r in reasons), reasons
    assert len(result.turns) >= len(scripts)
    heard = " ".join(t.transcript for t in result.turns).lower()
    assert "egg" in heard and "alligator" in heard, heard
    assert [m.role for m in result.history] == ["user", "assistant"] * len(result.turns)
    assert engine.lease.free and not [t for t in threading.enumerate() if t.name.startswith(("cascade-", "reply-"))]
