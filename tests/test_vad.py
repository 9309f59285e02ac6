"""Silero voice activity on real speech, silence and noise; the playback fade."""

import numpy as np
import pytest

from core.audio.format import RATE
from core.audio.playback import FADE_MS, PlaybackQueue
from core.turns import has_speech


def test_speech_is_voiced_and_silence_or_noise_is_not(stack, speak):
    _, vad = stack
    vad.reset()
    speech = speak("The quick brown fox jumps over the lazy dog.")
    probs = np.array(vad.push(speech))
    assert np.mean(probs > 0.5) > 0.6  # most windows of running speech
    vad.reset()
    assert max(vad.push(np.zeros(16000, np.float32))) < 0.1
    vad.reset()
    noise = np.random.default_rng(1).normal(0, 0.05, 32000).astype(np.float32)
    assert np.mean(np.array(vad.push(noise)) > 0.5) < 0.05
    vad.reset()
    assert has_speech(vad, speech) and not has_speech(vad, noise)


def test_frames_of_any_size_give_the_same_probabilities(stack, speak):
    _, vad = stack
    speech = speak("Hello there, how are you?")
    vad.reset()
    whole = vad.push(speech)
    vad.reset()
    pieces = []
    for i in range(0, len(speech), 160):  # 10 ms frames, as the audio worker feeds them
        pieces += vad.push(speech[i : i + 160])
    assert np.allclose(whole, pieces[: len(whole)], atol=1e-5)


def _playing() -> PlaybackQueue:
    """A queue 10 ms into a one-second reply at half scale."""
    q = PlaybackQueue(48000)
    q.begin_reply()
    q.write(np.full(48000, 0.5, np.float32), 48000)
    q.read(480)
    return q


def test_fade_out_is_short_and_reaches_silence():
    q = _playing()
    q.fade_out()
    tail = np.concatenate([q.read(480) for _ in range(5)])
    sounding = np.flatnonzero(tail)
    assert len(sounding) and sounding[-1] < 48000 * 0.020  # silent within 20 ms
    assert len(sounding) <= 48000 * FADE_MS / 1000
    ramp = tail[: len(sounding)]
    assert np.all(np.diff(ramp) <= 1e-6) and ramp[0] > 0.4  # a ramp down, not a cut
    assert q.queued_samples == 0


def test_a_paused_reply_is_silent_within_20_ms_and_goes_on_where_it_stopped():
    q = PlaybackQueue(48000)
    q.begin_reply()
    reply = np.sin(np.arange(48000) * 2 * np.pi * 200 / 48000).astype(np.float32) * 0.5
    q.write(reply, 48000)
    first = q.read(4800)
    q.pause()
    held = np.concatenate([q.read(480) for _ in range(20)])  # 200 ms held: a fade, then silence
    sounding = np.flatnonzero(held)
    assert len(sounding) and sounding[-1] < 48000 * 0.020
    n = int(48000 * FADE_MS / 1000)
    assert q.underruns == 0 and q.played == 4800 + n  # waiting is not an underrun
    q.resume()
    rest = np.concatenate([q.read(4800) for _ in range(10)])
    assert np.all(np.abs(rest[:n]) <= np.abs(reply[4800 + n : 4800 + 2 * n]) + 1e-6)  # ramps back in
    assert np.allclose(rest[n : 48000 - 4800 - 2 * n], reply[4800 + 2 * n : 48000 - n])  # nothing lost or doubled
    assert np.allclose(first, reply[:4800])


def test_stopping_a_paused_reply_drops_it_and_the_next_reply_plays_clean():
    q = _playing()
    q.pause()
    q.read(4800)
    q.fade_out()
    assert q.queued_samples == 0 and not q.read(4800).any()
    q.begin_reply()
    q.write(np.full(4800, 0.25, np.float32), 48000)
    assert np.allclose(q.read(4800), 0.25)  # nothing of the old reply in front of it


@pytest.mark.models
def test_a_soft_first_word_right_after_a_reset_is_heard(vad):
    """A reset leaves the model as after a moment of quiet: from a zeroed state it heard the
    telephone voice's soft "Oh, I don't..." only 230 ms into the words."""
    from bench.natural import recorded_turns
    from core.audio.vad import WINDOW

    turn = next(t for t in recorded_turns() if t.text.startswith("Oh, I don't"))
    vad.reset()
    probs = np.array(vad.push(turn.audio))
    first_voiced = int(np.argmax(probs > 0.5)) * WINDOW
    assert probs.max() > 0.5 and first_voiced <= turn.speech[0][0] + RATE // 10
