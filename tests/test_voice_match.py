"""Voice matching on real speech from the packaged voice.

The "other speaker" is the packaged voice made higher and shorter-tracted with WORLD (+6 semitones,
formants x1.12); it says other sentences than the reply, as a user's clip would.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soxr

from core.style.voice_match import (
    ReferenceError,
    StreamingVoiceMatcher,
    VoiceMapping,
    VoiceProfile,
    analyze_reference,
    convert,
    formant_distance_st,
    formant_ratio,
    pitch_distance_st,
    profile_of_voice,
)
from tests.conftest import fresh_voice, word_error

pytestmark = pytest.mark.models  # loads the real models (see the marker in pyproject.toml)

REFERENCE_TEXT = (
    "My grandmother grew tomatoes and beans behind the house every summer. "
    "In the evenings she would sit on the porch and tell us stories about the old harbour. "
    "We never knew which of them were true, and we never asked."
)
# The voice's median pitch wanders by about a semitone from one short text to the next; a reply of
# five clauses keeps that well below the distances measured here.
REPLY = (
    "I think a walk by the lake would do you good.",
    "The forecast says the rain will stop around noon.",
    "Would you like me to remind you to take an umbrella anyway?",
    "Afterwards we could look at that recipe for apple pie.",
    "It only needs flour, butter, apples and a little cinnamon.",
)
SHIFT_ST, FORMANT_RATIO = 6.0, 1.12


@pytest.fixture(scope="module")
def tts(stack):
    return fresh_voice()


def speak(tts, text: str) -> np.ndarray:
    return np.concatenate(list(tts.synthesize(text)))


@pytest.fixture(scope="module")
def source(tts):
    return profile_of_voice(tts)


@pytest.fixture(scope="module")
def reference(tts, source):
    """The plain reference speech's profile, and the profile of the "other speaker" saying it."""
    speech = speak(tts, REFERENCE_TEXT)
    other = convert(speech, tts.rate, VoiceMapping(source.f0_median_hz, SHIFT_ST, formant_ratio=FORMANT_RATIO))
    return analyze_reference(speech, tts.rate), analyze_reference(other, tts.rate)


@pytest.fixture(scope="module")
def reply(tts, source, reference):
    """The reply clause by clause, plain and matched to the other speaker."""
    chunks = [speak(tts, clause) for clause in REPLY]
    matcher = StreamingVoiceMatcher(tts.rate, source, reference[1])
    matched = [matcher.process(chunk) for chunk in chunks]
    assert len(matcher.flush()) == 0
    return chunks, matched


# ---- refusals --------------------------------------------------------------------------------


def test_refuses_too_short_and_too_long_clips(tts):
    speech = speak(tts, "Hello there, how are you today?")
    with pytest.raises(ReferenceError, match="at least 5 seconds"):
        analyze_reference(speech[: 3 * tts.rate], tts.rate)
    with pytest.raises(ReferenceError, match="at most 30 seconds"):
        analyze_reference(np.zeros(31 * 16000, np.float32), 16000)


def test_refuses_silence():
    with pytest.raises(ReferenceError, match="silent"):
        analyze_reference(np.zeros(8 * 16000, np.float32), 16000)
    faint_hiss = np.random.default_rng(1).normal(0, 10 ** (-70 / 20), 8 * 16000).astype(np.float32)
    with pytest.raises(ReferenceError, match="silent"):
        analyze_reference(faint_hiss, 16000)


def test_refuses_clipped_speech(reply, tts):
    speech = np.concatenate(reply[0])
    with pytest.raises(ReferenceError, match="distorted"):
        analyze_reference(np.clip(4 * speech, -1, 1), tts.rate)


@pytest.mark.parametrize("kind", ["white noise", "pure tone"])
def test_refuses_what_is_not_speech(kind):
    rate = 16000
    if kind == "white noise":
        clip = np.random.default_rng(2).normal(0, 0.1, 8 * rate)
    else:
        clip = 0.3 * np.sin(2 * np.pi * 180 * np.arange(8 * rate) / rate)
    with pytest.raises(ReferenceError, match="does not sound like speech") as refused:
        analyze_reference(clip.astype(np.float32), rate)
    assert refused.value.reason.endswith(".") and ". " not in refused.value.reason  # one sentence


# ---- the profile -----------------------------------------------------------------------------


def test_profile_shows_a_higher_shorter_voice(reference):
    plain, other = reference
    shift = 12 * np.log2(other.f0_median_hz / plain.f0_median_hz)
    # Re-synthesis moves which frames count as voiced, and the median with them: ~1 semitone at worst.
    assert abs(shift - SHIFT_ST) < 2.0, shift
    assert abs(formant_ratio(plain.envelope_db, other.envelope_db) - FORMANT_RATIO) < 0.04
    assert other.formant_scale > plain.formant_scale * 1.06
    assert abs(other.tilt_db_per_octave - plain.tilt_db_per_octave) < 1.0  # the tilt was left alone


def test_profile_does_not_depend_on_rate_channels_or_sample_format(reply, tts):
    speech = np.concatenate(reply[0])
    mono = analyze_reference(speech, tts.rate)
    at_44k = soxr.resample(speech, tts.rate, 44100)
    stereo_int16 = np.round(np.stack([at_44k, 0.8 * at_44k], axis=1) * 32767 * 0.9).astype(np.int16)
    other = analyze_reference(stereo_int16, 44100)
    assert pitch_distance_st(mono, other) < 0.75  # the voice's F0 has two humps: its median is touchy
    assert formant_distance_st(mono, other) < 0.3
    assert abs(mono.tilt_db_per_octave - other.tilt_db_per_octave) < 0.5


def test_profile_survives_json(reference):
    profile = reference[1]
    again = VoiceProfile.from_json(json.loads(json.dumps(profile.to_json())))
    assert again == profile
    with pytest.raises(ValueError):
        VoiceProfile.from_json({**profile.to_json(), "f0_median_hz": "high"})
    with pytest.raises(ValueError):
        VoiceProfile.from_json({"f0_median_hz": 120.0})


def test_a_stored_profile_from_another_pitch_tracker_is_measured_again(reference, tmp_path):
    """Medians from different trackers do not compare (Harvest read this voice 20% higher than
    Praat): a clip's profile stored by an older version is measured again, not trusted."""
    from core.style.voice_clips import add_clip, clip_profile

    speech = soxr.resample(speak(fresh_voice(), REFERENCE_TEXT), 22050, 16000).astype(np.float32)
    name, profile = add_clip(tmp_path, speech, "old")
    stored = tmp_path / (name + ".profile.json")
    old = {**json.loads(stored.read_text()), "measured_by": "harvest", "f0_median_hz": 140.0}
    stored.write_text(json.dumps(old))
    again = clip_profile(tmp_path, name)  # from the stored clip (16-bit WAV: a hair off the original)
    assert again.measured_by == "praat-ac" and abs(again.f0_median_hz / profile.f0_median_hz - 1) < 0.01
    assert VoiceProfile.from_json(json.loads(stored.read_text())) == again


# ---- matching ----------------------------------------------------------------------------------


def test_matching_at_least_halves_the_distance_to_the_reference(reply, reference, tts):
    target = reference[1]
    before = analyze_reference(np.concatenate(reply[0]), tts.rate)
    after = analyze_reference(np.concatenate(reply[1]), tts.rate)
    assert pitch_distance_st(after, target) <= 0.5 * pitch_distance_st(before, target)
    assert formant_distance_st(after, target) <= 0.5 * formant_distance_st(before, target)


def test_chunks_keep_their_length_and_join_without_clicks(reply):
    chunks, matched = reply
    assert [len(m) for m in matched] == [len(c) for c in chunks]
    joined = np.concatenate(matched)
    typical_step = np.percentile(np.abs(np.diff(joined)), 99)
    for piece in matched:
        assert abs(piece[0]) < 1e-3 and abs(piece[-1]) < 1e-3  # each piece starts and ends at rest
    joins = np.cumsum([len(m) for m in matched])[:-1]
    assert all(abs(joined[j] - joined[j - 1]) <= typical_step for j in joins)


def test_a_clause_comes_out_in_blocks_the_first_one_short(tts, source, reference):
    """The listener waits for the first block only; the blocks join without clicks and add up to
    the clause converted whole."""
    speech = speak(tts, REPLY[2])
    matcher = StreamingVoiceMatcher(tts.rate, source, reference[1])
    blocks = list(matcher.pieces(speech))
    assert len(blocks) >= 3 and len(blocks[0]) <= 0.2 * tts.rate
    joined = np.concatenate(blocks)
    np.testing.assert_array_equal(joined, convert(speech, tts.rate, matcher.mapping))
    typical_step = np.percentile(np.abs(np.diff(joined)), 99)
    joins = np.cumsum([len(b) for b in blocks])[:-1]
    assert all(abs(joined[j] - joined[j - 1]) <= typical_step for j in joins)


def test_a_chunk_cut_mid_word_still_joins_smoothly(tts, source, reference):
    speech = speak(tts, REPLY[0])
    middle = len(speech) // 2 + int(np.argmax(np.abs(speech[len(speech) // 2 :][:2000])))  # a loud sample
    matcher = StreamingVoiceMatcher(tts.rate, source, reference[1])
    first, second = matcher.process(speech[:middle]), matcher.process(speech[middle:])
    joined = np.concatenate([first, second])
    step = abs(joined[len(first)] - joined[len(first) - 1])
    assert step <= np.percentile(np.abs(np.diff(joined)), 99)


def test_a_tiny_chunk_waits_for_the_next_or_for_flush(tts, source, reference):
    matcher = StreamingVoiceMatcher(tts.rate, source, reference[1])
    tiny = speak(tts, "Oh.")[: tts.rate // 20]
    assert len(matcher.process(tiny)) == 0
    assert len(matcher.flush()) == len(tiny)
    assert len(matcher.process(tiny)) == 0
    assert len(matcher.process(np.zeros(tts.rate, np.float32))) == len(tiny) + tts.rate


def test_matched_speech_stays_intelligible(stack, reply, tts):
    engine = stack[0]
    text = " ".join(REPLY)

    def heard(audio: np.ndarray) -> str:
        return engine.asr.transcribe(soxr.resample(audio, tts.rate, 16000).astype(np.float32))

    plain = word_error(text, heard(np.concatenate(reply[0])))
    matched = word_error(text, heard(np.concatenate(reply[1])))
    assert matched <= plain + 0.15, (plain, matched)
