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
    d = TurnDetector(TurnConfig(threshold=0.5))
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
    assert [e.kind for p in speech for e in d.push(p, min_speech_ms=config.barge_in_ms)][:1] == ["start"]
