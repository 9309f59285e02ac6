"""The session's logic on a virtual clock with a fake engine and scripted voice activity: turn
taking, speculative replies, barge-in, push-to-talk, stop, and who owns the model, checked on
hand-written cases and on random schedules (hypothesis). No model, no wall-clock assertion."""

from __future__ import annotations

import queue
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.events import Mode, ReplyEnd, State, StateChanged
from core.session import _SPEECH_TAIL
from core.turns import TurnConfig
from core.audio.format import RATE
from models.engine import (
    CancelToken,
    ConcurrentUse,
    EndReason,
    ModelLease,
    ReplyDone,
    ReplyText,
    StageTime,
    single_threaded,
    start_idle,
    start_reply,
)
from models.engine import Style
from tests.fakes import Rig, ScriptedJudge

CONFIG = TurnConfig()


@pytest.fixture()
def thread_errors():
    """Exceptions raised on any thread during the test (a reply thread must never die of one)."""
    errors: list[BaseException] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)
    yield errors
    threading.excepthook = previous


# ---- ownership, without a session ------------------------------------------------------------


class Model:
    def __init__(self) -> None:
        self.inside = threading.Event()
        self.leave = threading.Event()

    @single_threaded
    def step(self) -> None:
        self.inside.set()
        self.leave.wait(5)

    @single_threaded
    def tokens(self):
        yield 1
        yield 2


def test_a_second_thread_entering_a_model_raises():
    model = Model()
    first = threading.Thread(target=model.step)
    first.start()
    assert model.inside.wait(5)
    with pytest.raises(ConcurrentUse):
        model.step()
    model.leave.set()
    first.join()
    model.leave.set()
    model.step()  # free again once the first thread has left


def test_a_generator_holds_the_model_until_it_is_closed():
    model = Model()
    tokens = model.tokens()
    next(tokens)
    other = []
    t = threading.Thread(target=lambda: other.append(pytest.raises(ConcurrentUse, lambda: list(model.tokens()))))
    t.start()
    t.join()
    tokens.close()
    assert list(model.tokens()) == [1, 2]


def test_a_new_reply_starts_only_after_the_previous_replys_workers_let_go():
    lease = ModelLease()
    a_busy, a_may_finish, b_started = threading.Event(), threading.Event(), threading.Event()

    def slow_step(events: queue.Queue) -> None:  # one step that ignores cancel until it is over
        a_busy.set()
        a_may_finish.wait(5)
        events.put(ReplyDone(EndReason.COMPLETE))

    def quick(events: queue.Queue) -> None:
        b_started.set()
        events.put(ReplyText("b"))
        events.put(ReplyDone(EndReason.COMPLETE))

    a, b = CancelToken(), CancelToken()
    a_events = start_reply(lease, a, "a", slow_step)
    assert isinstance(next(a_events), StageTime)
    assert a_busy.wait(5)
    a.cancel()
    assert list(a_events) == [ReplyDone(EndReason.CANCELLED)]  # the caller is free at once
    b_events = []
    reader = threading.Thread(target=lambda: b_events.extend(start_reply(lease, b, "b", quick)))
    reader.start()
    reader.join(0.05)
    assert not b_started.is_set() and not lease.free, "b started while a's worker was inside the model"
    a_may_finish.set()
    reader.join(5)
    assert b_started.is_set() and b_events[-1] == ReplyDone(EndReason.COMPLETE)
    assert not b.cancelled, "cancelling a reached b"
    handover = next(e for e in b_events if isinstance(e, StageTime))
    assert handover.stage == "handover" and handover.seconds > 0


def test_a_reply_cancelled_while_waiting_for_the_model_never_starts():
    lease = ModelLease()
    with lease:
        token = CancelToken()
        token.cancel()
        started = []
        events = list(start_reply(lease, token, "x", lambda q: started.append(1)))
    assert events == [ReplyDone(EndReason.CANCELLED)] and started == [] and lease.free


def test_a_worker_that_raises_ends_the_reply_with_an_error_and_frees_the_model():
    lease = ModelLease()

    def broken(events):
        raise ValueError("decoder exploded")

    events = list(start_reply(lease, CancelToken(), "x", broken))
    assert events[-1] == ReplyDone(EndReason.ERROR, "decoder exploded")
    with lease:
        pass


# ---- the session, case by case -----------------------------------------------------------


def test_a_turn_is_answered_and_kept(thread_errors):
    rig = Rig()
    rig.quiet_for(200)
    rig.say_for(1200)
    rig.quiet_for(3000)
    [call] = rig.engine.calls
    assert [f.reason for f in rig.finished] == [ReplyEnd.COMPLETE]
    assert [(m.role, m.text) for m in rig.session.history] == [
        ("user", call.transcript),
        ("assistant", call.reply_text),
    ]
    states = [e.state for e in rig.events if isinstance(e, StateChanged)]
    assert states == [State.LISTENING, State.HEARING, State.THINKING, State.SPEAKING, State.LISTENING]
    latency = rig.session.latencies[0]
    # Speculated at the pause and released at the end of the turn: first sound on the next tick.
    assert CONFIG.end_of_turn_ms - 40 <= latency.end_of_turn <= CONFIG.end_of_turn_ms + 40
    assert latency.response - latency.end_of_turn <= 20
    assert latency.stages["asr_after_end"] == 0  # recognised at the pause, before the turn ended
    assert rig.played == sum(len(e.samples) for e in call.script if hasattr(e, "samples"))
    assert not thread_errors and not rig.live_reply_threads()


def test_the_judge_is_given_the_last_seconds_of_a_long_turn_up_to_the_pause(thread_errors):
    """The end-of-turn model hears at most its window: only that much of a long turn is copied
    for it, ending just after the pause's last voiced window (the rig's samples are positions)."""
    from core.audio.turn_end import WINDOW_S

    heard = []
    rig = Rig(judge=ScriptedJudge(lambda audio: heard.append(audio.copy()) or 0.9))
    rig.say_for(12000)
    said_to = rig.position
    rig.quiet_for(1000)
    [audio] = heard
    assert len(audio) == WINDOW_S * RATE
    assert np.all(np.diff(audio) == 1)  # one stretch of the stream, in order
    assert said_to <= audio[-1] + 1 <= said_to + RATE // 10 + 512  # the pause, and a little after it
    assert not thread_errors


def test_a_pause_judged_complete_ends_the_turn_after_a_short_silence(thread_errors):
    judge = ScriptedJudge(lambda audio: 0.9)
    rig = Rig(judge=judge)
    rig.say_for(1200)
    rig.quiet_for(2000)
    [latency] = rig.session.latencies
    assert CONFIG.complete_after_ms - 40 <= latency.end_of_turn <= CONFIG.complete_after_ms + 40
    assert len(judge.asked) == 1 and [f.reason for f in rig.finished] == [ReplyEnd.COMPLETE]
    rig.session.close()
    assert judge.closed and not thread_errors


def test_a_pause_judged_unfinished_waits_for_the_whole_silence(thread_errors):
    rig = Rig(judge=ScriptedJudge(lambda audio: 0.1))
    rig.say_for(1200)
    rig.quiet_for(CONFIG.end_of_turn_ms - 100)
    assert rig.session.state == State.HEARING and not rig.finished  # "I was thinking about, um"
    rig.say_for(800)  # ... and the sentence goes on: one turn, no reply in between
    rig.quiet_for(CONFIG.end_of_turn_ms + 2000)
    [latency] = rig.session.latencies
    assert CONFIG.end_of_turn_ms - 40 <= latency.end_of_turn <= CONFIG.end_of_turn_ms + 40
    assert [m.role for m in rig.session.history] == ["user", "assistant"] and not thread_errors


def test_a_pause_judged_unfinished_is_not_asked_about_again(thread_errors):
    def complete(audio: np.ndarray) -> float:  # would sound finished once 400 ms of the quiet is heard
        quiet_ms = (float(audio[-1]) - rig.speech[-1][1]) * 1000 / RATE  # frames carry their positions
        return 0.9 if quiet_ms >= 400 else 0.1

    judge = ScriptedJudge(complete)
    rig = Rig(judge=judge)
    rig.say_for(1200)
    rig.quiet_for(CONFIG.end_of_turn_ms + 1500)
    [latency] = rig.session.latencies
    assert CONFIG.end_of_turn_ms - 40 <= latency.end_of_turn <= CONFIG.end_of_turn_ms + 40
    assert len(judge.asked) == 1 and [f.reason for f in rig.finished] == [ReplyEnd.COMPLETE]
    assert not thread_errors


def test_a_verdict_on_an_earlier_pause_does_not_end_the_turn(thread_errors):
    answers = iter([0.1, 0.95])  # the first pause is unfinished; the second complete
    rig = Rig(judge=ScriptedJudge(lambda audio: next(answers)))
    rig.say_for(800)
    rig.quiet_for(400)
    rig.say_for(800)
    rig.quiet_for(1500)
    assert len(rig.session.latencies) == 1 and len(rig.engine.calls) == 2
    assert rig.session.latencies[0].end_of_turn <= CONFIG.complete_after_ms + 40 and not thread_errors


def test_a_pause_inside_a_turn_discards_the_prepared_reply_and_only_its_own(thread_errors):
    rig = Rig()
    rig.say_for(800)
    rig.quiet_for(300)  # past the speculation point, short of the end of the turn
    rig.say_for(800)
    rig.quiet_for(3000)
    first, second = rig.engine.calls
    assert first.token.cancelled and first.closed  # thrown away, and its work stopped
    assert rig.session.replies_ended[ReplyEnd.DISCARDED] == 1
    assert [f.reason for f in rig.finished] == [ReplyEnd.COMPLETE]  # the discarded one never showed
    assert rig.session.history[-1].text == second.reply_text
    assert len(second.turn.audio) > len(first.turn.audio)  # the whole turn
    assert rig.session.prepared == {"prepared": 2, "thrown_away": 1, "used": 1}
    assert not thread_errors and not rig.live_reply_threads()


def test_a_barge_in_cuts_the_reply_to_what_was_heard(thread_errors):
    rig = Rig(clauses=6)
    rig.say_for(1000)
    rig.quiet_for(CONFIG.end_of_turn_ms + CONFIG.reopen_ms + 300)  # past the reopening: mid-reply
    rig.say_for(600)
    call = rig.engine.calls[0]
    assert call.token.cancelled
    heard = rig.session.history[1]
    assert heard.interrupted and heard.role == "assistant"
    words = call.reply_text.split()
    assert 0 < len(heard.text.split()) < len(words) and words[: len(heard.text.split())] == heard.text.split()
    rig.quiet_for(CONFIG.end_of_turn_ms + 4000)  # the new turn is answered
    assert [f.reason for f in rig.finished] == [ReplyEnd.INTERRUPTED, ReplyEnd.COMPLETE]
    assert not thread_errors and not rig.live_reply_threads()


def test_speech_right_after_the_turn_reopens_it(thread_errors):
    rig = Rig()
    rig.say_for(1000)
    rig.quiet_for(CONFIG.end_of_turn_ms + 100)
    rig.say_for(700)  # within reopen_ms of the end: the same turn
    rig.quiet_for(3000)
    first, second = rig.engine.calls[0], rig.engine.calls[-1]
    assert first.token.cancelled
    discarded = [f for f in rig.finished if f.reason == ReplyEnd.DISCARDED]
    # Reported with the words it answered, so the window and the history file can take them back.
    assert [f.transcript for f in discarded] == [first.transcript]
    assert [m.role for m in rig.session.history] == ["user", "assistant"]  # one turn, not two
    assert len(second.turn.audio) > len(first.turn.audio)
    assert not thread_errors and not rig.live_reply_threads()


def test_a_voice_far_under_the_user_neither_holds_the_turn_open_nor_cuts_into_the_reply(thread_errors):
    """A television 20 dB under the user talks on after their question: the turn ends at the
    user's silence, and the reply plays to its end over the television."""
    rig = Rig(judge=ScriptedJudge(lambda audio: 0.1))  # judged unfinished: the whole silence is waited
    rig.say_for(1200)
    user_to, tv_from = rig.position, rig.position + RATE // 5
    rig.vad.level = lambda position: -50.0 if position >= tv_from else -30.0 if position < user_to else -70.0
    rig.quiet_for(200)
    rig.say_for(6000)  # voiced all along, for the VAD: the television
    rig.quiet_for(2000)
    [latency] = rig.session.latencies
    assert CONFIG.end_of_turn_ms - 40 <= latency.end_of_turn <= CONFIG.end_of_turn_ms + 40
    assert [f.reason for f in rig.finished] == [ReplyEnd.COMPLETE]
    assert [m.role for m in rig.session.history] == ["user", "assistant"] and not thread_errors
    # The same voice at the user's own level is the user going on: one longer turn, the reply
    # prepared at the pause thrown away.
    rig = Rig(judge=ScriptedJudge(lambda audio: 0.1))
    rig.say_for(1200)
    rig.quiet_for(200)
    rig.say_for(1000)
    rig.quiet_for(CONFIG.end_of_turn_ms + 2000)
    assert [f.reason for f in rig.finished] == [ReplyEnd.COMPLETE]
    first, last = rig.engine.calls[0], rig.engine.calls[-1]
    assert first.token.cancelled and len(first.turn.audio) < 1.5 * RATE < 2 * RATE < len(last.turn.audio)


def test_a_voice_that_starts_loud_after_the_user_falls_silent_does_not_keep_the_turn_open(thread_errors):
    """A voice 15 dB under the user comes in after their question with two loud syllables, loud
    enough to take the turn up again; at its own pause it is judged as a whole, and the turn
    ends at once with the user's own words, instead of an end-of-turn silence after that voice."""
    rig = Rig(judge=ScriptedJudge(lambda audio: 0.1))  # judged unfinished: the whole silence is waited
    user_to = rig.position + RATE * 1200 // 1000
    voice_from = user_to + RATE * 450 // 1000
    loud_to = voice_from + 3 * 512

    def level(position: int) -> float:
        if position < user_to:
            return -25.0
        if position < voice_from:
            return -75.0
        return -30.0 if position < loud_to else -43.0

    rig.vad.level = level
    rig.say_for(1200)
    rig.quiet_for(450)
    rig.say_for(1200)
    voice_to = rig.position
    rig.quiet_for(3000)
    [latency] = rig.session.latencies
    # Ended at the voice's own pause, 1650 ms after the user fell silent, not 1500 ms after the voice.
    assert 1650 <= latency.end_of_turn < 1650 + 200
    assert latency.end_of_turn < (voice_to - user_to) * 1000 / RATE + CONFIG.end_of_turn_ms
    assert [f.reason for f in rig.finished][-1] == ReplyEnd.COMPLETE
    answered = rig.engine.calls[-1]
    assert len(answered.turn.audio) < user_to + RATE // 2  # the user's words, not the voice's
    assert [m.role for m in rig.session.history] == ["user", "assistant"] and not thread_errors


def test_push_to_talk_and_stop(thread_errors):
    rig = Rig()
    rig.session.set_mode(Mode.PUSH_TO_TALK)
    rig.session.press()
    rig.say_for(1000)
    rig.session.release()
    rig.run(600)
    rig.session.stop()
    rig.run(100)
    assert [f.reason for f in rig.finished] == [ReplyEnd.INTERRUPTED]
    assert rig.session.state == State.LISTENING
    assert not thread_errors and not rig.live_reply_threads()


def test_push_to_talk_returns_to_listening_whatever_it_heard_without_the_key(thread_errors):
    """In push-to-talk, sound without the key (the reply's own echo, a cough) is no turn: when
    the reply has played, the session is listening again."""
    rig = Rig()
    rig.session.set_mode(Mode.PUSH_TO_TALK)
    rig.quiet_for(200)
    rig.session.press()
    rig.say_for(1000)
    rig.session.release()
    rig.quiet_for(100)
    rig.say_for(400)  # while the reply plays, no key held
    rig.quiet_for(3000)
    assert [f.reason for f in rig.finished] == [ReplyEnd.COMPLETE]
    assert rig.session.state == State.LISTENING
    assert not thread_errors and not rig.live_reply_threads()


def test_push_to_talk_hears_everything_up_to_the_release(thread_errors):
    """The key is the boundary: a last word voice activity misses (a soft "France") is still in
    the turn, and the response is dated from where speech ended."""
    rig = Rig()
    rig.session.set_mode(Mode.PUSH_TO_TALK)
    rig.session.press()
    rig.say_for(700)
    rig.quiet_for(400)  # the soft last word: held, not voiced
    rig.session.release()
    rig.run(50)
    turn = rig.engine.calls[0].turn
    assert len(turn.audio) >= 16000 * (700 + 400) // 1000 - 160  # not cut 100 ms after the voiced part
    reply = rig.session._reply
    assert reply.last_voiced_at <= rig.clock() - 0.35  # from the end of the voiced part
    assert not thread_errors


def test_an_engine_error_is_shown_once_and_the_next_turn_works(thread_errors):
    rig = Rig()
    script = rig.engine.script
    rig.engine.script = lambda n, turn: script(n, turn)[:2] + [ReplyDone(EndReason.ERROR, "model fell over")]
    rig.session.say("first")
    rig.run(500)
    rig.engine.script = script
    rig.session.say("second")
    rig.run(2000)
    assert [(f.reason, f.detail) for f in rig.finished] == [
        (ReplyEnd.ERROR, "model fell over"),
        (ReplyEnd.COMPLETE, ""),
    ]
    assert [m.text for m in rig.session.history if m.role == "user"] == ["second"]
    assert not thread_errors and not rig.live_reply_threads()


def _heard_span(call) -> tuple[int, int]:
    """The stream positions of the audio a spoken turn handed the engine (the rig's samples are
    their own positions), checked to be one unbroken stretch."""
    audio = call.turn.audio
    assert audio is not None and len(audio), f"call {call.number} got no audio"
    assert np.all(np.diff(audio) == 1), f"call {call.number} got pieces of the stream, not one stretch"
    return int(audio[0]), int(audio[-1]) + 1


def _covers(span: tuple[int, int], speech: tuple[int, int]) -> bool:
    """The span holds all of the speech, and not much after it (the tail and one VAD window)."""
    return span[0] <= speech[0] and speech[1] <= span[1] <= speech[1] + _SPEECH_TAIL + 512


def test_after_stops_and_typed_questions_a_spoken_turn_is_its_own_audio(thread_errors):
    """Stop resets the turn detector; its positions must still name places in the same stream
    (they once restarted from zero, and a later turn was handed audio from elsewhere, or none)."""
    rig = Rig()
    for i in range(6):
        rig.session.say(f"typed {i}")
        rig.run(300)
        rig.session.stop()
        rig.run(100)
    rig.quiet_for(500)
    rig.say_for(1500)
    rig.quiet_for(3000)
    spoken = [c for c in rig.engine.calls if c.turn.text is None]
    assert spoken and _covers(_heard_span(spoken[-1]), rig.speech[-1])
    assert rig.finished[-1].reason == ReplyEnd.COMPLETE
    assert not thread_errors and not rig.live_reply_threads()


def test_in_half_duplex_each_turn_after_a_reply_is_its_own_audio(thread_errors):
    """Half duplex: the VAD hears nothing while the reply plays and is reset after it."""
    rig = Rig(duplex=False)
    for _ in range(3):
        rig.quiet_for(400)
        rig.say_for(1200)
        rig.quiet_for(4000)
    assert [f.reason for f in rig.finished].count(ReplyEnd.COMPLETE) == 3
    asked = [m.text for m in rig.session.history if m.role == "user"]
    answered = [c for c in rig.engine.calls if c.transcript in asked]
    assert len(answered) == 3
    for call, speech in zip(answered, rig.speech):
        assert _covers(_heard_span(call), speech)
    assert not thread_errors and not rig.live_reply_threads()


def test_new_turn_settings_keep_the_streams_positions(thread_errors):
    rig = Rig()
    rig.quiet_for(2000)
    rig.session.set_turn_config(TurnConfig(end_of_turn_ms=1000))
    rig.quiet_for(300)
    rig.say_for(1200)
    rig.quiet_for(3000)
    assert _covers(_heard_span(rig.engine.calls[-1]), rig.speech[-1])
    assert not thread_errors and not rig.live_reply_threads()


# ---- random schedules -------------------------------------------------------------------------

ACTIONS = st.one_of(
    st.tuples(st.just("speak"), st.integers(100, 3000)),
    st.tuples(st.just("quiet"), st.integers(50, 1500)),
    st.tuples(st.just("stop"), st.just(0)),
    st.tuples(st.just("press"), st.integers(200, 1500)),  # push-to-talk: held while speaking this long
    st.tuples(st.just("say"), st.just(0)),
    st.tuples(st.just("style"), st.floats(0.5, 2.0)),
    st.tuples(st.just("device"), st.just(0)),  # a device was replaced: barge-in held a moment
    st.tuples(st.just("stall"), st.integers(10, 800)),  # the engine takes this long over a step
    st.tuples(st.just("mode"), st.sampled_from(list(Mode))),
)


def run_schedule(rig: Rig, actions) -> None:
    for kind, value in actions:
        if kind == "speak":
            rig.say_for(value)
        elif kind == "quiet":
            rig.quiet_for(value)
        elif kind == "stop":
            rig.session.stop()
            rig.tick()
        elif kind == "press":
            rig.session.press()
            rig.say_for(value)
            rig.session.release()
            rig.tick()
        elif kind == "say":
            rig.session.say(f"typed question {len(rig.engine.calls) + 1}")
            rig.tick()
        elif kind == "style":
            rig.session.set_style(Style(speed=value))
        elif kind == "device":
            rig.session.hold_barge_in(2.0)
        elif kind == "stall":
            rig.auto_engine = False
            rig.run(value)
            rig.auto_engine = True
        elif kind == "mode":
            rig.session.set_mode(value)
    rig.session.set_mode(Mode.ALWAYS_LISTENING)
    rig.quiet_for(5000)  # everything started gets answered or ends


def check_invariants(rig: Rig, thread_errors: list) -> None:
    session, engine = rig.session, rig.engine
    assert not thread_errors, thread_errors
    assert not engine.errors, engine.errors  # never two threads in the model
    assert engine.lease.free
    assert not rig.live_reply_threads(), "a reply thread outlived its reply"
    # Every started reply ended exactly once (a second end raises in the session).
    assert session.replies_started == len(engine.calls)
    assert sum(session.replies_ended.values()) == session.replies_started
    assert all(call.closed for call in engine.calls)
    assert session.state == State.LISTENING
    prepared = session.prepared
    assert prepared["used"] + prepared["thrown_away"] == prepared["prepared"]
    # The history holds committed turns only, each answered by what was said or heard of it.
    calls = {call.transcript: call for call in engine.calls}
    history = session.history
    assert len(history) % 2 == 0
    for user, assistant in zip(history[::2], history[1::2]):
        assert user.role == "user" and assistant.role == "assistant"
        said = calls[user.text].reply_text.split()
        heard = assistant.text.split()
        if assistant.interrupted:
            assert 0 < len(heard) <= len(said) and said[: len(heard)] == heard
        else:
            assert heard == said
    finished = rig.finished
    assert sum(f.reason in (ReplyEnd.COMPLETE, ReplyEnd.INTERRUPTED) for f in finished) >= len(history) // 2
    # Back to listening, the engine was last asked to prepare for the history and style it has now.
    assert engine.primed and engine.primed[-1] == (tuple(history), session.style)
    # Every spoken turn was handed one stretch of the stream that ends in speech or just after it.
    for call in engine.calls:
        if call.turn.text is None and call.turn.verbatim is None:
            first, end = _heard_span(call)
            assert any(a < end and end <= b + _SPEECH_TAIL + 512 for a, b in rig.speech), (call.number, first, end)


# Schedules: 100, or 600 with --slow (tests/conftest.py; CI runs at least 500).
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(st.lists(ACTIONS, min_size=1, max_size=12))
def test_random_schedules_keep_every_invariant(actions):
    errors: list[BaseException] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)
    try:
        verdicts = iter(np.random.default_rng(len(actions)).uniform(0, 1, 10_000))
        rig = Rig(
            config=TurnConfig(speculate_after_ms=96),
            clauses=2,
            clause_ms=300,
            judge=ScriptedJudge(lambda audio: next(verdicts)),
        )
        run_schedule(rig, actions)
        check_invariants(rig, errors)
    finally:
        threading.excepthook = previous


# ---- idle work: preparing the next reply -----------------------------------------------------


def quick_reply(events: queue.Queue) -> None:
    events.put(ReplyText("r"))
    events.put(ReplyDone(EndReason.COMPLETE))


def _eventually(condition, seconds: float = 5.0) -> bool:
    """For a condition another thread makes true (no timing is asserted: only that it happens)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def test_idle_work_runs_when_the_models_are_free_and_a_reply_stops_it_within_a_step():
    lease = ModelLease()
    steps, in_step, step_may_end = [], threading.Event(), threading.Event()

    def prime(token: CancelToken) -> None:
        while not token.cancelled:
            steps.append(threading.current_thread().name)
            in_step.set()
            step_may_end.wait(5)  # one step that ignores the token until it is over

    idle = start_idle(lease, "prime", prime)
    assert in_step.wait(5) and not lease.free
    reply_events: list = []
    reader = threading.Thread(target=lambda: reply_events.extend(start_reply(lease, CancelToken(), "r", quick_reply)))
    reader.start()
    reader.join(0.05)
    assert idle.token.cancelled and not reply_events, "the reply started inside the idle work's step"
    step_may_end.set()
    reader.join(5)
    assert idle.done.is_set() and len(steps) == 1
    assert reply_events[-1] == ReplyDone(EndReason.COMPLETE) and lease.free


def test_idle_work_waits_behind_a_reply_and_newer_idle_work_replaces_it():
    lease = ModelLease()
    ran: list[str] = []
    with lease:  # a reply's workers hold the models
        first = start_idle(lease, "p1", lambda token: ran.append("first"))
        second = start_idle(lease, "p2", lambda token: ran.append("second"))
        assert first.done.wait(5) and first.token.cancelled  # dropped while it waited
        assert not second.done.is_set()
    assert second.done.wait(5)
    assert ran == ["second"]
    assert _eventually(lambda: lease.free)


def test_a_reply_asking_while_idle_work_waits_goes_first():
    lease = ModelLease()
    ran: list[str] = []
    events: list = []
    with lease:  # a reply's workers hold the models; idle work and another reply wait
        idle = start_idle(lease, "p", lambda token: ran.append("idle"))
        reader = threading.Thread(target=lambda: events.extend(start_reply(lease, CancelToken(), "r", quick_reply)))
        reader.start()
        assert _eventually(lambda: idle.token.cancelled)  # asking for the lease dropped the idle work
    reader.join(5)
    assert events[-1] == ReplyDone(EndReason.COMPLETE)
    assert idle.done.wait(5) and ran == []
    lease.stop_idle(5)
    assert not idle.thread.is_alive() and lease.free


def test_the_session_lets_the_engine_prepare_each_next_reply(thread_errors):
    rig = Rig()
    assert rig.engine.primed == [((), Style())]  # at the start: the system text alone
    rig.say_for(1200)
    rig.quiet_for(3000)
    assert rig.engine.primed[-1] == (tuple(rig.session.history), Style())
    assert len(rig.session.history) == 2
    calm = Style(instruction="Speak calmly.")
    rig.session.set_style(calm)
    rig.session.set_style(calm)  # no change: nothing new to prepare
    assert rig.engine.primed[-1] == (tuple(rig.session.history), calm)
    assert [p for p in rig.engine.primed if p[1] == calm] == [rig.engine.primed[-1]]
    primed = len(rig.engine.primed)
    rig.session.close()
    assert len(rig.engine.primed) == primed and not thread_errors  # closing prepares nothing


def test_a_reply_thread_left_by_another_test_is_not_the_rigs(thread_errors):
    """A real session that an earlier failed test left running has threads named like the rig's."""
    gone = threading.Event()
    stray = threading.Thread(target=gone.wait, name="reply-1", daemon=True)
    stray.start()
    try:
        rig = Rig()
        rig.session.say("first")
        rig.run(2000)
        assert [f.reason for f in rig.finished] == [ReplyEnd.COMPLETE]
        assert not rig.live_reply_threads()
    finally:
        gone.set()
