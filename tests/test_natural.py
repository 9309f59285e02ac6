"""The natural-speech material: pauses are silent for as long as they say, speech is speech,
speakers differ, the same seed gives the same audio, and the words are the ones in the text."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest

from bench import natural
from bench.natural import (
    FAR_ROOM,
    RATE,
    Kind,
    Pause,
    PiperSpeaker,
    Register,
    Say,
    active_rms,
    lay_out,
    natural_conversation,
    natural_set,
    natural_turn,
    parse_script,
    pcm16_from_wav,
    plan_turn,
    recorded_turns,
    words_of,
)
from core.style.pitch import track
from tests.conftest import VOICE_SEED, word_error

pytestmark = pytest.mark.models  # loads the real models (see the marker in pyproject.toml)

ESPEAK = natural.EspeakSpeaker("en-us+m3", 150, 45)
MEDIUM = "Could you remind me / to call my sister ~ on Sunday afternoon?"


@pytest.fixture(scope="module", autouse=True)
def onnx_seed_restored():
    """Piper renderings here seed onnxruntime's global generator; the suite's own seed is put
    back for the sessions later tests make."""
    yield
    onnxruntime.set_seed(VOICE_SEED)


@pytest.fixture(scope="module")
def vad():
    from core.audio.vad import load_vad

    return load_vad()


def probabilities(vad, audio: np.ndarray) -> np.ndarray:
    vad.reset()
    try:
        return np.array(vad.push(audio))
    finally:
        vad.reset()


def windows_within(spans, count: int, window: int = 512) -> np.ndarray:
    """Indices of the VAD windows lying wholly inside one of the spans."""
    starts = np.arange(count) * window
    inside = np.zeros(count, bool)
    for a, b in spans:
        inside |= (starts >= a) & (starts + window <= b)
    return np.flatnonzero(inside)


def median_f0(turns) -> float:
    f0 = np.concatenate([track(t.audio if t.background is None else t.audio - t.background, RATE) for t in turns])
    return float(np.median(f0[f0 > 0]))


# --- the plan -----------------------------------------------------------------------------------


def test_marks_become_pauses_and_fillers_and_the_text_keeps_only_the_words():
    script = "~ I was thinking / about the trip ~ next month."
    steps = plan_turn(script, np.random.default_rng(3), hesitate_p=0.0)
    said = [s for s in steps if isinstance(s, Say)]
    assert [s.text for s in said if not s.filler] == ["I was thinking", "about the trip", "next month."]
    assert said[0].filler and sum(s.filler for s in said) == 2  # the opening and the inner `~`
    pauses = [s.seconds for s in steps if isinstance(s, Pause)]
    assert len(pauses) == 4 and all(0.3 <= p <= 1.5 for p in pauses)  # one after the opening filler
    assert not isinstance(steps[-1], Pause)
    assert words_of(script) == "I was thinking about the trip next month."
    # Every `/` can turn into a hesitation; with certainty, each does.
    hesitant = plan_turn("one / two / three", np.random.default_rng(0), hesitate_p=1.0)
    assert sum(isinstance(s, Say) and s.filler for s in hesitant) == 2


@pytest.mark.parametrize("script", ["/ hello", "hello /", "a / / b", "a ~ / b", "", "a ~"])
def test_a_mark_must_stand_between_phrases(script):
    with pytest.raises(ValueError):
        parse_script(script)


def test_a_wav_from_a_pipe_is_read_to_its_end():
    pcm = (np.sin(np.arange(1000) / 7) * 20000).astype("<i2")
    header = (
        b"RIFF"
        + (0xFFFFFFFF).to_bytes(4, "little")
        + b"WAVE"
        + b"fmt "
        + (16).to_bytes(4, "little")
        + (1).to_bytes(2, "little")
        + (1).to_bytes(2, "little")
        + (22050).to_bytes(4, "little")
        + (44100).to_bytes(4, "little")
        + (2).to_bytes(2, "little")
        + (16).to_bytes(2, "little")
        + b"data"
        + (0x7FFFFFFF).to_bytes(4, "little")
    )  # sizes as a stream writes them
    audio, rate = pcm16_from_wav(header + pcm.tobytes())
    assert rate == 22050 and len(audio) == 1000
    assert np.allclose(audio, pcm / 32768.0)
    with pytest.raises(ValueError):
        pcm16_from_wav(header.replace(b"fmt ", b"junk"))


# --- one turn -----------------------------------------------------------------------------------


@pytest.mark.parametrize("speaker", [ESPEAK, PiperSpeaker(speed=1.1, semitones=3.0)], ids=["espeak", "piper"])
def test_pauses_are_quiet_for_their_length_and_speech_is_voiced(vad, speaker):
    turn = natural_turn(MEDIUM, speaker, np.random.default_rng(11))
    assert len(turn.pauses) >= 3
    speech_level = active_rms(turn.audio)
    assert abs(20 * np.log10(speech_level) - natural.SPEECH_DBFS) < 2
    for a, b in turn.pauses:
        assert 0.3 <= (b - a) / RATE <= 1.5
        quiet = turn.audio[a:b]
        assert 20 * np.log10(np.sqrt(np.mean(quiet**2)) / speech_level) < -25  # breaths included
        assert np.max(np.abs(quiet)) < 0.05 * np.max(np.abs(turn.audio))
    probs = probabilities(vad, turn.audio)
    # VAD windows inside a pause, away from its edges (the model's context spills 100 ms over).
    edge = int(0.1 * RATE)
    in_pauses = windows_within([(a + edge, b) for a, b in turn.pauses], len(probs))
    in_words = windows_within(turn.speech, len(probs))
    assert len(in_pauses) and np.mean(probs[in_pauses] > 0.5) < 0.1
    assert np.mean(probs[in_words] > 0.5) > 0.8


def test_the_same_seed_gives_the_same_audio_and_another_seed_other_pauses(tmp_path):
    piper = PiperSpeaker(speed=0.9, semitones=-2.0)
    first = natural_turn("Set a timer / for ten minutes.", piper, np.random.default_rng(5), cache=tmp_path / "a")
    onnxruntime.set_seed(VOICE_SEED + 1)  # whatever seed other code left, Piper renders alike
    again = natural_turn("Set a timer / for ten minutes.", piper, np.random.default_rng(5), cache=tmp_path / "b")
    assert np.array_equal(first.audio, again.audio) and first.pauses == again.pauses  # rendered twice
    other = natural_turn("Set a timer / for ten minutes.", piper, np.random.default_rng(6), cache=tmp_path / "a")
    assert other.pauses != first.pauses


def test_a_rendering_is_cached_whole_and_read_back(tmp_path, monkeypatch):
    audio = natural.render(["Turn it down", "um"], ESPEAK, tmp_path)
    assert [p.suffix for p in tmp_path.iterdir()] == [".npz"]  # no temp file left behind

    def no_voice(*_):
        raise AssertionError("rendered again instead of read from the cache")

    monkeypatch.setattr(natural, "synthesize_espeak", no_voice)
    again = natural.render(["Turn it down", "um"], ESPEAK, tmp_path)
    assert again.keys() == audio.keys() and all(np.array_equal(again[k], audio[k]) for k in audio)


# --- conversations ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def conversation():
    return natural_conversation(n_turns=6, seed=2)


def test_the_same_seed_gives_the_same_conversation(conversation):
    same = natural_conversation(n_turns=6, seed=2)
    assert [t.text for t in same.turns] == [t.text for t in conversation.turns]
    assert all(np.array_equal(x.audio, y.audio) for x, y in zip(conversation.turns, same.turns))
    assert np.array_equal(lay_out(conversation, 2.0).audio, lay_out(same, 2.0).audio)
    other = natural_conversation(n_turns=6, seed=3)
    assert not np.array_equal(other.turns[0].audio, conversation.turns[0].audio)


def test_two_speakers_alternate_and_differ_in_pitch(conversation):
    turns = conversation.turns
    first, second = turns[0::2], turns[1::2]
    assert len({t.speaker for t in first}) == 1 and len({t.speaker for t in second}) == 1
    assert first[0].speaker != second[0].speaker
    low, high = sorted([median_f0(first), median_f0(second)])
    assert 12 * np.log2(high / low) > 4  # semitones apart: one lower voice, one higher


def test_background_voice_is_15_to_25_db_under_the_speaker(conversation):
    under = [t for t in conversation.turns if t.background is not None]
    gaps = [g for g in conversation.gap_speech if g is not None]
    assert under and gaps
    for turn in under:
        below = 20 * np.log10(active_rms(turn.background) / active_rms(turn.audio - turn.background))
        assert -26 < below < -14
    for speech in gaps:
        assert -26 < 20 * np.log10(active_rms(speech)) - natural.SPEECH_DBFS < -14


def test_turns_and_gaps_lie_where_the_timeline_says(conversation):
    gaps = [2.0, 3.5, 1.5, 4.0, 3.0]
    timeline = lay_out(conversation, gaps)
    turns = conversation.turns
    assert len(timeline.audio) == sum(len(t.audio) for t in turns) + sum(int(g * RATE) for g in gaps)
    for turn, (a, b) in zip(turns, timeline.spans):
        assert np.array_equal(timeline.audio[a:b], turn.audio)
    talking = [i for i, g in enumerate(conversation.gap_speech) if g is not None]
    i = talking[0]
    gap = timeline.audio[timeline.spans[i][1] : timeline.spans[i + 1][0]]
    assert np.array_equal(gap, conversation.gap(i, gaps[i]))
    long_gap = conversation.gap(i, gaps[i] + 3.0)
    kept = len(gap) - int(natural.FADE_S * RATE)  # the shorter gap fades the voice it cuts off
    assert np.array_equal(long_gap[:kept], gap[:kept])  # a longer reply hears the same gap first
    assert active_rms(gap) > 10 ** ((natural.SPEECH_DBFS - 26) / 20)  # someone talks there
    silent = [i for i, g in enumerate(conversation.gap_speech) if g is None]
    if silent:
        assert active_rms(conversation.gap(silent[0], 2.0)) < 10 ** (-55 / 20)  # room tone only
    with pytest.raises(ValueError):
        lay_out(conversation, [1.0])


def test_a_far_room_fills_the_start_of_pauses_with_a_decaying_tail():
    dry = natural_turn(MEDIUM, ESPEAK, np.random.default_rng(1))
    far = natural.far_field(dry, natural.make_rir(FAR_ROOM, RATE))
    assert len(far.audio) == len(dry.audio) and far.pauses == dry.pauses
    a = dry.pauses[0][0]
    first, second = slice(a, a + 800), slice(a + 800, a + 1600)  # 50 ms each
    power = lambda x, part: float(np.mean(x[part].astype(np.float64) ** 2))  # noqa: E731
    assert power(far.audio, first) > 100 * power(dry.audio, first)  # 20 dB of reverberation
    assert power(far.audio, second) < power(far.audio, first)


# --- the set, the voices, the words -------------------------------------------------------------


def test_the_set_covers_short_medium_and_long_turns_voices_and_background():
    turns = natural_set(seed=0)
    made = [t for t in turns if t.script]
    kinds = {kind: [t for t in made if kind.seconds[0] <= t.seconds <= kind.seconds[1]] for kind in Kind}
    assert len(kinds[Kind.SHORT]) >= 4 and len(kinds[Kind.MEDIUM]) >= 5 and len(kinds[Kind.LONG]) >= 3
    assert all(any(0.3 * RATE <= b - a <= 1.5 * RATE for a, b in t.pauses) for t in made)
    assert len({t.speaker for t in made}) >= 5
    assert any(t.speaker.startswith("piper:") for t in made) and any(t.speaker.startswith("espeak:") for t in made)
    assert sum(t.background is not None for t in made) >= 3
    real = [t for t in turns if t.speaker.startswith("recorded:")]
    assert len({t.speaker for t in real}) == 2


def test_voices_sit_in_their_registers():
    f0 = {
        s: median_f0([natural_turn("The museum opens / at nine in the morning.", s, np.random.default_rng(0))])
        for s in natural.SPEAKERS
    }
    for speaker, hz in f0.items():
        assert (hz < 150) if speaker.register is Register.LOW else (hz > 150), (speaker.id, hz)


def test_the_recorded_people_speak_where_the_transcript_says(vad):
    turns = recorded_turns()
    assert {t.speaker for t in turns} == {"recorded:Diane", "recorded:Sheila"}
    assert all(t.text for t in turns) and sum(t.seconds for t in turns) > 20
    voiced = []
    for turn in turns:
        probs = probabilities(vad, turn.audio)
        voiced += list(probs[windows_within(turn.speech, len(probs))] > 0.5)
    assert np.mean(voiced) > 0.8


@pytest.fixture(scope="module")
def whisper():
    from models.cascade.asr import WhisperAsr
    from models.registry import ModelStore

    return WhisperAsr(ModelStore().ensure("whisper-base"))


def test_whisper_hears_the_words_of_a_hesitant_turn(whisper):
    turn = natural_turn(MEDIUM, ESPEAK, np.random.default_rng(11))
    assert len(turn.spoken.split()) > len(turn.text.split())  # fillers were said, and left out of the text
    heard = whisper.transcribe(turn.audio)
    # Whisper base reads espeak-ng's voices well: one word in this turn's eleven may go wrong.
    assert word_error(turn.text, heard) <= 0.1, heard


def test_whisper_hears_the_transcript_in_the_recorded_turns(whisper):
    """The recorded turns are cut where their transcript says: a telephone call, so Whisper base
    misses more than on synthetic voices, but nowhere near what a turn of the wrong words gives."""
    turns = [t for t in recorded_turns() if t.seconds > 3]
    heard = [whisper.transcribe(t.audio) for t in turns]
    assert word_error([t.text for t in turns], heard) < 0.3, heard
    assert word_error([t.text for t in turns], heard[1:] + heard[:1]) > 0.7  # each against another's words
