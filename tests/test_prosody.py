"""Speed and pitch of the companion's voice on real speech from the packaged Piper voice: the
change asked for, nothing else, and the same samples whether the reply streams in or comes whole."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soxr

from core.style.pitch import compare_tracks, f0_track, measure_shift, range_factor
from core.style.prosody import StreamingProsody, apply_prosody
from tests.conftest import fresh_voice

pytestmark = pytest.mark.models  # loads the real models (see the marker in pyproject.toml)

CLAUSES = ("The museum opens at nine in the morning,", "and it closes at five on weekdays.")


@pytest.fixture(scope="module")
def voice(stack):
    """The reply as the engine streams it: one chunk per clause, at the voice's rate."""
    tts = fresh_voice()
    chunks = [np.concatenate(list(tts.synthesize(clause))) for clause in CLAUSES]
    return chunks, tts.rate


@pytest.fixture(scope="module")
def whole(voice):
    chunks, rate = voice
    audio = np.concatenate(chunks)
    return audio, rate, f0_track(audio, rate)


def in_random_pieces(audio: np.ndarray, rate: int, seed: int) -> list[np.ndarray]:
    """Cuts anywhere, mid-word included, 0.05-1.5 s apart."""
    rng = np.random.default_rng(seed)
    cuts = np.cumsum(rng.integers(rate // 20, rate * 3 // 2, size=64))
    return np.split(audio, cuts[cuts < len(audio)])


def streamed(pieces: list[np.ndarray], rate: int, speed: float, semitones: float) -> np.ndarray:
    stream = StreamingProsody(rate, speed, semitones)
    return np.concatenate([stream.process(piece) for piece in pieces] + [stream.flush()])


@pytest.mark.parametrize("semitones", [-12.0, -4.0, 7.0])
def test_pitch_measurement_reads_a_known_shift(semitones):
    """A gliding harmonic tone played faster or slower, like tape: pitch and speed change by the
    same known ratio, with no stretcher involved to doubt."""
    rate, ratio = 22050, 2 ** (semitones / 12)
    t = np.arange(rate) / rate
    phase = 2 * np.pi * np.cumsum(110 * (1 + 0.06 * np.sin(2 * np.pi * 2 * t))) / rate
    tone = (0.05 * sum(np.sin(k * phase) / k for k in range(1, 40))).astype(np.float32)
    played = soxr.resample(tone, rate * ratio, rate).astype(np.float32)
    shift = measure_shift(tone, played, rate, speed=ratio, semitones=semitones)
    assert abs(shift.cents - 100 * semitones) < 5, shift
    assert shift.octave_slips < 0.05


@pytest.mark.parametrize("speed", [0.75, 1.5])
def test_speed_changes_duration_and_keeps_pitch(whole, speed):
    audio, rate, track = whole
    styled = apply_prosody(audio, rate, speed=speed)
    assert abs(len(styled) * speed / len(audio) - 1) < 0.03
    shift = compare_tracks(track, f0_track(styled, rate), speed=speed)
    assert abs(shift.cents) < 50, shift


@pytest.mark.parametrize("semitones", [4.0, -4.0])
def test_pitch_shifts_f0_and_keeps_duration(whole, semitones):
    audio, rate, track = whole
    styled = apply_prosody(audio, rate, semitones=semitones)
    assert abs(len(styled) / len(audio) - 1) < 0.03
    shift = compare_tracks(track, f0_track(styled, rate, 2 ** (semitones / 12)), semitones=semitones)
    assert abs(shift.cents - 100 * semitones) < 25, shift


# Bit-exact, not "close": the reply is cut into stretcher calls at quiet moments found on a fixed
# frame grid from the start of the reply, from the samples alone, however the chunks are cut, so
# streaming does the same arithmetic as the whole.
@pytest.mark.parametrize("speed,semitones", [(0.75, 0.0), (1.0, 4.0), (1.25, -4.0), (2.0, 12.0)])
def test_streamed_reply_equals_the_whole_utterance(voice, whole, speed, semitones):
    chunks, rate = voice
    audio = whole[0]
    reference = apply_prosody(audio, rate, speed, semitones)
    assert len(reference) == round(len(audio) / speed)
    np.testing.assert_array_equal(streamed(chunks, rate, speed, semitones), reference)
    np.testing.assert_array_equal(streamed(in_random_pieces(audio, rate, seed=1), rate, speed, semitones), reference)


def test_a_chunk_handed_on_in_parts_is_the_same_audio(voice, whole):
    """`pieces` (what the session uses, so a clause's first sound waits for its first part only)
    gives the very samples of the whole utterance, in several parts per clause."""
    chunks, rate = voice
    stream = StreamingProsody(rate, 1.25, -4.0)
    parts = [list(stream.pieces(chunk)) for chunk in chunks]
    assert all(len(p) >= 4 for p in parts)
    joined = np.concatenate([p for chunk_parts in parts for p in chunk_parts] + [stream.flush()])
    np.testing.assert_array_equal(joined, apply_prosody(whole[0], rate, 1.25, -4.0))


def test_other_engine_rates_stream_alike(whole):
    audio, rate, _ = whole
    audio = soxr.resample(audio, rate, 24000).astype(np.float32)
    reference = apply_prosody(audio, 24000, 1.5, 3.0)
    assert len(reference) == round(len(audio) / 1.5)
    pieces = in_random_pieces(audio, 24000, seed=2)
    np.testing.assert_array_equal(streamed(pieces, 24000, 1.5, 3.0), reference)


def test_each_chunk_comes_out_at_once_but_for_a_short_look_ahead(voice):
    chunks, rate = voice
    stream = StreamingProsody(rate, 0.75, 2.0)
    taken = given = 0
    for chunk in chunks:
        given += len(stream.process(chunk))
        taken += len(chunk)
        held_ms = (taken - given * 0.75) / rate * 1000  # of the reply's own time
        assert 0 <= held_ms < 100


def test_flush_and_reset_ready_the_stream_for_the_next_reply(voice, whole):
    chunks, rate = voice
    reference = apply_prosody(whole[0], rate, 1.5, -2.0)
    stream = StreamingProsody(rate, 1.5, -2.0)
    stream.process(chunks[0][: rate // 3])
    stream.reset()  # a barge-in: the half-played reply is dropped
    for _ in range(2):
        reply = np.concatenate([stream.process(chunk) for chunk in chunks] + [stream.flush()])
        np.testing.assert_array_equal(reply, reference)


def test_speed_one_and_no_pitch_change_pass_samples_untouched(voice):
    chunks, rate = voice
    stream = StreamingProsody(rate)
    for chunk in chunks:
        np.testing.assert_array_equal(stream.process(chunk), chunk)
    assert len(stream.flush()) == 0
    audio = np.concatenate(chunks)
    np.testing.assert_array_equal(apply_prosody(audio, rate), audio)


@pytest.mark.parametrize(
    "speed,semitones,message",
    [
        (0.49, 0.0, "speed"),
        (2.01, 0.0, "speed"),
        (math.nan, 0.0, "speed"),
        (1.0, 12.5, "pitch"),
        (1.0, -13.0, "pitch"),
        (1.0, math.inf, "pitch"),
    ],
)
def test_out_of_range_settings_are_refused(speed, semitones, message):
    with pytest.raises(ValueError, match=message):
        StreamingProsody(22050, speed, semitones)
    with pytest.raises(ValueError, match=message):
        apply_prosody(np.zeros(100, np.float32), 22050, speed, semitones)


def through_chain(chunks: list[np.ndarray], rate: int, style) -> np.ndarray:
    from core.style.chain import chain_for
    from models.engine import Capabilities

    chain = chain_for(style, rate, Capabilities(True, True, True, False, native_speed=True))
    return np.concatenate([piece for chunk in chunks for piece in chain.pieces(chunk)] + [chain.flush()])


@pytest.mark.parametrize("pitch_range", [0.6, 1.45])
def test_an_emotions_intonation_range_widens_or_narrows_the_melody(voice, pitch_range):
    """sad (x0.6) and excited (x1.45) move the voice's pitch around its own centre less or more,
    clause by clause; the centre stays where it was."""
    from models.engine import Style

    chunks, rate = voice
    for chunk in chunks:
        styled = through_chain([chunk], rate, Style(pitch_range=pitch_range))
        assert len(styled) == len(chunk)
        before, after = f0_track(chunk, rate), f0_track(styled, rate)
        assert abs(range_factor(before, after) - pitch_range) < 0.15, range_factor(before, after)
        centre = 12 * np.log2(np.median(after[after > 0]) / np.median(before[before > 0]))
        assert abs(centre) < 0.5, centre


def test_pitch_joins_the_contour_change_when_world_runs(voice, whole):
    """With an intonation range the pitch setting is applied by WORLD too (no second processor):
    the shift is still the one asked for, the duration unchanged."""
    from models.engine import Style

    chunks, rate = voice
    audio, _, track = whole
    styled = through_chain(chunks, rate, Style(pitch_semitones=4.0, pitch_range=0.8))
    assert len(styled) == len(audio)
    shift = compare_tracks(track, f0_track(styled, rate, 2 ** (4 / 12)), semitones=4.0)
    assert abs(shift.cents - 400) < 50, shift


@pytest.mark.parametrize("speed", [0.75, 1.5])
def test_the_cascade_speaks_at_the_speed_asked(stack, speed):
    """Piper's length scale read off the voice's measured speed curve, topped up by the style chain
    past what the scale does accurately: the speaking time shrinks or grows by the speed asked.
    (Piper's length scale alone gave 1.34x for 1.5.) A fresh seeded voice, median of five
    renderings each: the voice times its words a little differently every time."""
    from core.style.chain import engine_chain
    from models.cascade.engine import CascadeEngine
    from models.cascade.tts import speaking_seconds
    from models.engine import Style

    engine = CascadeEngine(stack[0].asr, stack[0].chat, fresh_voice())
    rate = engine.tts.rate
    text = (
        "Let me know when you want to go through the plan again, and I will be here. "
        "The museum is closed on Mondays, but the garden behind it stays open until sunset."
    )

    def speaking_time(speed: float) -> float:
        times = []
        for _ in range(5):
            chain = engine_chain(engine, Style(speed=speed), rate)
            pieces = [chain.process(c) if chain else c for c in engine.tts.synthesize(text, speed)]
            times.append(speaking_seconds(np.concatenate(pieces + ([chain.flush()] if chain else [])), rate))
        return float(np.median(times))

    got = speaking_time(1.0) / speaking_time(speed)
    assert abs(got / speed - 1) < 0.04, got
