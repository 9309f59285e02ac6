"""Parts of the benchmarks that decide what they report. The soak's speaker (bench/soak.py):
turns and gaps played frame by frame, a wait while the session answers, a cut-in every few
replies, and no new turn once the conversation's time is up. bench duplex's gap log."""

import numpy as np
import pytest

from bench.soak import (
    BARGE_AFTER_S,
    BARGE_EVERY,
    PATIENCE_S,
    _account,
    _Plan,
    _Speaker,
    held_mb,
    rss_mb,
    slope_mb_per_10_min,
    window_growth_mb,
)
from core.audio.format import FRAME
from core.audio.simulated import VirtualClock


def _plan(turns: int, frames: int = 3) -> _Plan:
    audio = [np.full(frames * FRAME, i + 1, np.float32) for i in range(turns)]
    gaps = [np.zeros(FRAME, np.float32) for _ in range(turns - 1)]
    return _Plan(audio, gaps)


def _play(speaker: _Speaker, clock: VirtualClock, frames: int) -> list[float]:
    """The first sample of each frame the speaker gives, the clock moving a frame each time."""
    out = []
    for _ in range(frames):
        out.append(float(speaker.frame(0)[0]))
        clock.wait_next()
    return out


def test_turns_and_gaps_in_order_and_a_wait_for_the_reply():
    clock = VirtualClock()
    plan = _plan(2)
    speaker = _Speaker(plan, clock)
    assert _play(speaker, clock, 4) == [1, 1, 1, 0]  # the first turn, then its gap
    speaker.turn_taken()
    assert plan.taken == {0} and plan.waiting
    assert _play(speaker, clock, 5) == [0] * 5  # silent while the reply is awaited
    speaker.reply_sounding()
    speaker.reply_ended()
    assert _play(speaker, clock, 4) == [2, 2, 2, 0]
    assert plan.over and plan.said == 2


def test_every_few_replies_the_speaker_cuts_in_after_the_reply_starts_sounding():
    clock = VirtualClock()
    plan = _plan(2)
    speaker = _Speaker(plan, clock)
    speaker.replies = BARGE_EVERY - 1
    assert _play(speaker, clock, 4) == [1, 1, 1, 0]
    speaker.turn_taken()  # after the gap: the next turn would start now
    speaker.reply_sounding()
    before = int(BARGE_AFTER_S / clock.period) - 1
    assert _play(speaker, clock, before) == [0] * before
    heard = _play(speaker, clock, 6)
    assert heard[:2] == [0, 2] and speaker.barge_ins == 1 and not plan.waiting  # the whole second turn


def test_a_cut_in_during_the_gap_is_the_next_turn():
    clock = VirtualClock()
    plan = _plan(2)
    speaker = _Speaker(plan, clock)
    speaker.replies = BARGE_EVERY - 1
    assert _play(speaker, clock, 3) == [1, 1, 1]
    speaker.turn_taken()  # taken while the gap plays
    assert plan.in_gap and plan.taken == {0}
    speaker.reply_sounding()
    heard = _play(speaker, clock, int(BARGE_AFTER_S / clock.period) + 3)
    assert heard[-3:] == [2, 2, 2] and speaker.barge_ins == 1


def test_no_turn_starts_once_the_conversation_has_lasted_its_time():
    clock = VirtualClock()
    plan = _plan(5)
    speaker = _Speaker(plan, clock, last_turn_by_s=0.035)  # three and a half frames
    assert _play(speaker, clock, 4) == [1, 1, 1, 0]
    speaker.turn_taken()
    speaker.reply_sounding()
    speaker.reply_ended()
    assert _play(speaker, clock, 3) == [0, 0, 0]  # time is up: the second turn is not said
    assert plan.over and len(plan.turns) == 1 and plan.taken == {0}


def test_a_turn_already_started_is_said_to_its_end():
    clock = VirtualClock()
    plan = _plan(2, frames=6)
    speaker = _Speaker(plan, clock, last_turn_by_s=0.02)
    assert _play(speaker, clock, 7) == [1] * 6 + [0]
    assert len(plan.turns) == 2  # cut only at a turn's start, and the next turn has not started


def test_a_reply_started_in_the_middle_of_a_turn_does_not_stop_the_speaker():
    clock = VirtualClock()
    plan = _plan(2, frames=4)
    speaker = _Speaker(plan, clock)
    assert _play(speaker, clock, 2) == [1, 1]
    speaker.turn_taken()  # too early: half the turn is still to come
    assert plan.cut_mid_turn == 1 and not plan.waiting and not plan.taken
    assert _play(speaker, clock, 3) == [1, 1, 0]  # talks on to the turn's end, then its gap
    speaker.turn_taken()  # now the turn is over: taken, and the speaker waits for the answer
    assert plan.taken == {0} and plan.waiting


def test_after_a_turn_the_speaker_waits_for_the_answer_before_going_on():
    clock = VirtualClock()
    plan = _plan(2)
    speaker = _Speaker(plan, clock)
    wait = int(PATIENCE_S / clock.period)
    heard = _play(speaker, clock, 3 + wait + 2)
    assert heard[: 3 + wait - 1] == [1] * 3 + [0] * (wait - 1)  # the turn, then silence: the gap and a wait
    assert heard[-2:] == [2, 2]  # no answer came: the speaker goes on
    assert plan.taken == set()  # ... and the first turn was never taken


def test_the_gap_log_notes_where_in_the_reply_each_run_of_underruns_came():
    from bench.duplex import _GapLog

    playback = _GapLog(48000)
    playback.begin_reply()
    playback.write(np.full(4800, 0.1, np.float32), 48000)  # 0.1 s
    for _ in range(3):  # all of it played
        playback.read(1600)
    assert playback.gaps == [] and playback.underruns == 0
    for _ in range(3):  # three reads find nothing
        playback.read(1600)
    assert playback.underruns == 3
    playback.write(np.full(3200, 0.1, np.float32), 48000)
    playback.read(1600)  # sound again: the gap is closed
    playback.read(3200)  # half of it there: a second gap, after 0.1 + 0.0667 s of sound
    assert playback.gaps == [{"reply": 1, "at_s": 0.1, "reads": 3}, {"reply": 1, "at_s": 0.167, "reads": 1}]
    playback.end_reply()
    playback.read(1600)  # after the reply's end an empty read is no underrun
    assert len(playback.gaps) == 2


def test_a_turn_not_taken_is_accounted_for_with_when_it_was_said_and_what_the_session_did():
    clock = VirtualClock()
    plan = _plan(2)
    speaker = _Speaker(plan, clock)
    _play(speaker, clock, 3)  # the first turn, three frames from t=0
    said_to = plan.spans[0][1]
    assert plan.spans[0][0] == 0.0 and said_to == pytest.approx(2 * clock.period)  # as its last frame was given
    trace = [(said_to - 5.0, "speaking"), (said_to + 0.5, "listening"), (said_to + PATIENCE_S + 1, "thinking")]
    account = _account(0, plan, trace)
    assert account["turn"] == 0 and account["said_s"] == [0.0, round(said_to, 2)]
    assert account["session"] == [f"{said_to + 0.5:.2f} listening"]  # only what fell inside its window
    assert _account(1, plan, trace)["session"] == []  # never said: nothing to account for it


def test_memory_trend_is_the_least_squares_slope_per_ten_minutes():
    climbing = [(300.0 * i, 1400.0 + 2.5 * i + (0.4 if i % 2 else -0.4)) for i in range(12)]
    assert slope_mb_per_10_min(climbing) == pytest.approx(5.0, abs=0.2)
    assert slope_mb_per_10_min([(300.0 * i, 1400.0 + (3 if i == 1 else 0)) for i in range(12)]) < 0.5
    assert np.isnan(slope_mb_per_10_min([(300.0, 1400.0)]))


def test_memory_growth_is_the_last_windows_median_against_the_first_ones():
    minutes = [(60.0 * m, 1400.0 + (50.0 if m % 7 == 3 else 0.0)) for m in range(5, 66)]
    flat = window_growth_mb(minutes)
    assert flat == {"first_window": 1400.0, "last_window": 1400.0, "growth": 0.0}  # swings left out
    leaking = [(t, mb + 0.8 * (t / 60 - 5)) for t, mb in minutes]  # 0.8 MB a minute: 48 MB an hour
    assert window_growth_mb(leaking)["growth"] == pytest.approx(0.8 * 50, abs=1.0)
    assert np.isnan(window_growth_mb([])["growth"])


def test_held_memory_leaves_out_what_was_freed():
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    # 40 MB in 100 kB blocks (under the mapping threshold, so from the heap), touched, then freed
    # except the last, which keeps the heap's top from shrinking on its own.
    blocks = [libc.malloc(100_000) for _ in range(400)]
    for block in blocks:
        ctypes.memset(block, 1, 100_000)
    for block in blocks[:-1]:
        libc.free(block)
    kept = rss_mb()
    assert held_mb() < kept - 20
    libc.free(blocks[-1])


def test_a_turn_taken_inside_a_pause_is_a_cut_in_named_by_what_ended_it():
    from bench.listening import cut_ins_of
    from bench.natural import Turn

    rate = 16000
    # Speech 0.2-1.0 s, a 1.6 s pause, speech 2.6-3.4 s, a 0.5 s pause, speech 3.9-4.5 s.
    speech = ((int(0.2 * rate), rate), (int(2.6 * rate), int(3.4 * rate)), (int(3.9 * rate), int(4.5 * rate)))
    pauses = ((rate, int(2.6 * rate)), (int(3.4 * rate), int(3.9 * rate)))
    turn = Turn(np.zeros(int(4.7 * rate), np.float32), "", "", "x:y", pauses, speech)

    found = cut_ins_of(turn, [1.25, 2.52, 2.7, 3.62, 4.71], end_of_turn_ms=1500)

    assert [(c["at_s"], c["silence_ms"], c["pause_s"], c["by"]) for c in found] == [
        (1.25, 250, 1.6, "judge"),
        (2.52, 1520, 1.6, "silence"),
        (2.7, 1700, 1.6, "silence"),  # words again, not yet heard: still that pause's
        (3.62, 220, 0.5, "judge"),
    ]  # 4.71 s, the last take, is the turn's own end
    assert [c["after_an_earlier_take"] for c in found] == [False, True, True, True]

    read = Turn(np.zeros(3 * rate, np.float32), "", "", "read:y", (), ((int(0.2 * rate), int(2.8 * rate)),))
    [inside] = cut_ins_of(read, [1.5, 2.7], end_of_turn_ms=1500)  # the last take: the turn's end, soft tail and all
    assert (inside["silence_ms"], inside["by"]) == (None, None)  # its pauses are not marked
