"""Turn detection from speech probabilities: start, pause (speculate), resume, end."""

import pytest

from core.turns import TurnConfig, TurnDetector

WIN_MS = 32


def run(detector: TurnDetector, probs: list[float]) -> list[tuple[str, int]]:
    out = []
    for i, p in enumerate(probs):
        out += [(e.kind, i) for e in detector.push(p)]
    return out


def ms(n: float) -> int:
    return int(round(n / WIN_MS))


def test_short_blip_does_not_start_a_turn():
    d = TurnDetector(TurnConfig(min_speech_ms=160))
    assert run(d, [0.9] * ms(96) + [0.0] * ms(1000)) == []


def test_turn_start_pause_and_end():
    config = TurnConfig(min_speech_ms=160, speculate_after_ms=200, end_of_turn_ms=500)
    d = TurnDetector(config)
    events = run(d, [0.0] * 5 + [0.9] * ms(800) + [0.0] * ms(700))
    kinds = [k for k, _ in events]
    assert kinds == ["start", "pause", "end"]
    speech_end = 5 + ms(800)
    pause_at = dict(events)["pause"]
    end_at = dict(events)["end"]
    assert (pause_at + 1 - speech_end) * WIN_MS == pytest.approx(200, abs=WIN_MS)
    assert (end_at + 1 - speech_end) * WIN_MS == pytest.approx(500, abs=WIN_MS)
    assert d.last_voiced_end == speech_end * 512


def test_speech_after_a_pause_resumes_the_same_turn():
    d = TurnDetector(TurnConfig(speculate_after_ms=200, end_of_turn_ms=500))
    probs = [0.9] * ms(500) + [0.0] * ms(300) + [0.9] * ms(400) + [0.0] * ms(600)
    assert [k for k, _ in run(d, probs)] == ["start", "pause", "resume", "pause", "end"]


def test_hysteresis_keeps_a_turn_through_dips():
    d = TurnDetector(TurnConfig(threshold=0.5, end_of_turn_ms=500))
    probs = [0.9] * 10 + [0.4, 0.45, 0.4] * 5 + [0.0] * ms(600)
    assert [k for k, _ in run(d, probs)] == ["start", "pause", "end"]


def test_bad_config_is_refused():
    with pytest.raises(ValueError):
        TurnConfig(speculate_after_ms=600, end_of_turn_ms=500)
    with pytest.raises(ValueError):
        TurnConfig(threshold=1.5)


def test_two_short_words_start_a_turn_but_scattered_voicing_does_not_barge_in():
    config = TurnConfig(min_speech_ms=160, barge_in_ms=250)
    words = [0.9] * 3 + [0.0] * 4 + [0.9] * 3 + [0.0] * 20  # "Wait... stop": 96 ms, pause, 96 ms
    assert [k for k, _ in run(TurnDetector(config), words)][:1] == ["start"]
    scattered = ([0.9, 0.0] * 12) + [0.0] * 20  # echo leftovers: voiced windows, never 250 ms in a row
    d = TurnDetector(config)
    assert [e.kind for p in scattered for e in d.push(p, min_speech_ms=config.barge_in_ms)] == []
    d = TurnDetector(config)
    speech = [0.9] * 9 + [0.0] * 20  # 288 ms unbroken: a real barge-in
    assert [e.kind for p in speech for e in d.push(p, min_speech_ms=config.barge_in_ms)][:2] == ["hold", "start"]


def barge(d: TurnDetector, probs: list[float], needed: float = 300) -> list[tuple[str, int]]:
    return [(e.kind, i) for i, p in enumerate(probs) for e in d.push(p, min_speech_ms=needed)]


def test_a_short_sound_pauses_the_reply_and_quiet_lets_it_go_on():
    config = TurnConfig(barge_in_hold_ms=128, barge_in_release_ms=256)
    mhm = [0.9] * 5 + [0.0] * 12  # 160 ms "mhm", then quiet
    events = barge(TurnDetector(config), mhm)
    assert events == [("hold", 3), ("release", 12)]  # held at the 4th window, released 8 quiet windows on
    assert barge(TurnDetector(config), [0.9] * 3 + [0.0] * 12) == []  # 96 ms: not even a pause


def test_held_through_the_gaps_between_words_until_a_phrase_takes_over():
    """ "Wait... stop, what is...": paused from the first word on, the turn starts once one unbroken
    run reaches the bar; gaps shorter than the release time keep the reply paused."""
    d = TurnDetector(TurnConfig(barge_in_hold_ms=128, barge_in_release_ms=256, end_of_turn_ms=500))
    words = [0.9] * 5 + [0.0] * 4 + [0.9] * 4 + [0.0] * 6 + [0.9] * 10 + [0.0] * 20
    events = barge(d, words)
    assert [k for k, _ in events] == ["hold", "start", "pause", "end"]
    assert events[1][1] == 28  # the 10th window of the last, unbroken run: 320 ms
    scattered = [0.9, 0.9, 0.0] * 12  # 64 ms bursts: never held, never a turn
    assert barge(TurnDetector(TurnConfig()), scattered) == []


def test_no_hold_while_barge_in_is_held_off():
    d = TurnDetector(TurnConfig())
    assert barge(d, [0.9] * 20, needed=float("inf")) == []


def test_voices_in_the_room_pause_a_reply_for_at_most_two_seconds():
    """Talk nearby in short runs never takes the turn; the hold ends after barge_in_hold_max_ms and
    no new one begins for as long, so the reply is not stalled by a radio."""
    config = TurnConfig(barge_in_hold_ms=160, barge_in_release_ms=256, barge_in_hold_max_ms=2000)
    chatter = ([0.9] * 6 + [0.0] * 3) * 30  # 192 ms runs, 96 ms gaps: 8.6 s
    events = barge(TurnDetector(config), chatter)
    kinds = [k for k, _ in events]
    assert "start" not in kinds
    assert kinds == ["hold", "release"] * 2 + ["hold"]  # the chatter ends while held: 8.6 s
    windows_per_s = 1000 / 32
    first_hold, first_release = events[0][1], events[1][1]
    assert (first_release - first_hold) / windows_per_s == pytest.approx(2.0, abs=0.1)
    second_hold = events[2][1]
    assert (second_hold - first_release) / windows_per_s >= 2.0


def run_levels(detector: TurnDetector, windows: list[tuple[float, float]]) -> list[tuple[str, int]]:
    """As `run`, each window a (speech probability, level in dBFS)."""
    out = []
    for i, (p, level) in enumerate(windows):
        out += [(e.kind, i) for e in detector.push(p, None, level)]
    return out


def test_a_voice_far_under_the_users_own_does_not_keep_their_turn_open():
    config = TurnConfig(speculate_after_ms=96, end_of_turn_ms=640, background_db=12)
    user = [(0.9, -20.0)] * ms(1000)
    gap = [(0.0, -70.0)] * ms(160)  # the user has fallen silent
    background = [(0.9, -38.0)] * ms(1500)  # a television 18 dB under them, heard as speech
    events = run_levels(TurnDetector(config), user + gap + background)
    assert [k for k, _ in events] == ["start", "pause", "end"]
    assert dict(events)["end"] < len(user) + ms(700)  # ended by the user's silence, not the television's
    # The same television while the user is still talking does not cut them off, and the user
    # going on at their own level (or a little softer) is the same turn.
    events = run_levels(TurnDetector(config), user + background[: ms(300)] + user)
    assert [k for k, _ in events] == ["start"]
    events = run_levels(TurnDetector(config), user + gap + [(0.9, -26.0)] * ms(500) + [(0.0, -70.0)] * ms(700))
    assert [k for k, _ in events] == ["start", "pause", "resume", "pause", "end"]


def test_a_voice_whose_first_syllables_are_loud_is_judged_on_its_whole_run():
    """As in the soak's lost turns: the user falls silent, and a background voice 15 dB under
    them comes in with two loud syllables. Judged on the latest 160 ms it passes for the user and
    takes the turn up again; judged as a whole at its own pause it is someone else, and the turn
    ends where the user fell silent, instead of waiting for the voice to stop."""
    config = TurnConfig(speculate_after_ms=96, end_of_turn_ms=1500, background_db=12, background_run_db=10)
    user = [(0.9, -25.0)] * ms(2000)
    quiet = [(0.0, -75.0)] * ms(450)
    voice = [(0.9, -36.0), (0.9, -30.0), (0.9, -31.0)] + [(0.9, -43.0)] * ms(1200)
    after = [(0.0, -75.0)] * ms(2000)
    events = run_levels(TurnDetector(config), user + quiet + voice + after)
    kinds = [k for k, _ in events]
    assert kinds[:3] == ["start", "pause", "resume"]  # its loud start passed for the user ...
    assert kinds[3:] == ["pause", "end"]  # ... its whole run did not: nothing after the end
    pause_at, end_at = (i for k, i in events[3:])
    assert pause_at == end_at  # the user's silence had already lasted the end-of-turn's
    assert end_at < len(user + quiet + voice) + ms(200)  # at the voice's own pause
    d = TurnDetector(config)
    run_levels(d, user + quiet + voice + [(0.0, -75.0)] * ms(200))
    assert d.last_voiced_end == len(user) * 512  # the turn ends where the user fell silent
    # The user going on a little softer than before is the same turn, ended after their own words.
    softer = [(0.9, -29.0)] * ms(800)
    events = run_levels(TurnDetector(config), user + quiet + softer + after)
    assert [k for k, _ in events] == ["start", "pause", "resume", "pause", "end"]
    assert dict(events)["end"] >= len(user + quiet + softer) + ms(1500) - 1


def test_just_after_a_turn_a_voice_far_under_the_user_does_not_start_another():
    config = TurnConfig(speculate_after_ms=96, end_of_turn_ms=320, reopen_ms=1000, background_db=12)
    user = [(0.9, -20.0)] * ms(1000)
    silent = [(0.0, -70.0)] * ms(400)
    after = run_levels(TurnDetector(config), user + silent + [(0.9, -40.0)] * ms(800))
    assert [k for k, _ in after] == ["start", "pause", "end"]
    louder = run_levels(TurnDetector(config), user + silent + [(0.9, -22.0)] * ms(800))
    assert [k for k, _ in louder] == ["start", "pause", "end", "start"]
    # Without levels (a recording judged by probability alone) every voice counts, as before.
    plain = run(TurnDetector(config), [p for p, _ in user + silent] + [0.9] * ms(800))
    assert [k for k, _ in plain] == ["start", "pause", "end", "start"]


def test_the_user_cutting_in_is_judged_on_their_run_of_speech_not_its_latest_dip():
    """Over the reply, the echo canceller ducks the user's voice between syllables (Silero still
    hears speech there). Judged on the latest 160 ms, each dip would read as someone far quieter
    and break the run before it reached a barge-in; judged on the run's own windows it is the
    user, and the cut-in comes once barge_in_ms of it are heard."""
    config = TurnConfig(speculate_after_ms=96, end_of_turn_ms=320, reopen_ms=100, background_db=12)
    d = TurnDetector(config)
    run_levels(d, [(0.9, -20.0)] * ms(1000) + [(0.0, -70.0)] * ms(600))  # the user's turn, ended
    reply = [(0.1, -70.0)] * ms(400)  # the reply plays; the canceller leaves near silence
    syllables = ([(0.9, -19.0)] * 4 + [(0.9, -40.0)] * 5) * 8  # 128 ms voiced, 160 ms ducked 21 dB
    events = []
    for i, (p, level) in enumerate(reply + syllables):
        events += [(e.kind, i) for e in d.push(p, 300, level)]
    assert [k for k, _ in events] == ["hold", "start"]
    assert (dict(events)["start"] - len(reply) + 1) * 32 <= 300 + 32  # as soon as 300 ms are heard


def test_a_voice_far_under_the_user_does_not_cut_into_the_reply():
    config = TurnConfig(speculate_after_ms=96, end_of_turn_ms=320, reopen_ms=100, background_db=12)
    for level, expected in ((-40.0, []), (-22.0, ["hold", "start"])):
        d = TurnDetector(config)
        run_levels(d, [(0.9, -20.0)] * ms(1000) + [(0.0, -70.0)] * ms(600))  # the user's turn, ended
        events = []
        for _ in range(ms(800)):  # the reply plays; a voice at `level` comes in
            events += [e.kind for e in d.push(0.9, 300, level)]
        assert events == expected, level
