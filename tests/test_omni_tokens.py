"""Mini-Omni's token layout, prompts, delay pattern and SNAC code mapping, against sequences
built by hand from the facts in the model's reference (not from the code under test)."""

import numpy as np
import pytest

from models.omni import tokens as T

TEXT_BASE = 152000
LAYER = 4160


def test_vocabulary_layout():
    assert T.PADDED_VOCAB == 181120
    assert [T.audio_shift(i) for i in (0, 1, 6)] == [152000, 156160, 176960]
    assert T.stream_columns(T.TEXT) == (0, 152000)
    assert T.stream_columns(6) == (176960, 181120)
    assert (T.EOT, T.PAD_T, T.INPUT_T, T.ANSWER_T, T.ASR) == (151936, 151937, 151938, 151939, 151940)
    assert (T.EOA, T.PAD_A, T.INPUT_A, T.ANSWER_A, T.SPLIT) == (4096, 4097, 4098, 4099, 4100)


def _audio_row(layer, local):
    return [TEXT_BASE + LAYER * layer + x for x in local]


def test_a1a2_prompt_by_hand():
    p = T.a1a2(3)
    for layer in range(7):
        assert p.ids[layer].tolist() == _audio_row(layer, [4098, 4097, 4097, 4097, 4096, 4099])
    assert p.ids[7].tolist() == [151938, 151937, 151937, 151937, 151936, 151939]
    assert p.audio_frames == 3 and p.length == 6


@pytest.mark.parametrize(
    "build, audio_last, text_last",
    [
        (T.a1t2, 4097, 151939),  # answer in text: audio streams padded
        (T.asr, 4097, 151940),  # transcribe: _asr in the text stream
    ],
)
def test_other_spoken_prompts_by_hand(build, audio_last, text_last):
    p = build(2)
    assert p.ids[5].tolist() == _audio_row(5, [4098, 4097, 4097, 4096, audio_last])
    assert p.ids[7].tolist() == [151938, 151937, 151937, 151936, text_last]


def test_text_prompts_by_hand():
    words = [11, 22, 33]
    t1a2, t1t2 = T.t1a2(words), T.t1t2(words)
    assert t1a2.ids[7].tolist() == [151938, 11, 22, 33, 151936, 151939]
    assert t1a2.ids[0].tolist() == _audio_row(0, [4097] * 5 + [4099])
    assert t1t2.ids[7].tolist() == [151938, 11, 22, 33, 151936, 151939]
    assert t1t2.ids[6].tolist() == _audio_row(6, [4097] * 6)
    assert t1a2.audio_frames == t1t2.audio_frames == 0


def test_text_guided_batch_is_a1a2_then_a1t2():
    item0, item1 = T.text_guided_batch(4)
    assert (item0.task, item1.task) == ("A1A2", "A1T2")
    # The same prompt except the last position, where item 1's audio is padded.
    assert np.array_equal(item0.ids[:, :-1], item1.ids[:, :-1])
    assert item0.ids[0, -1] == TEXT_BASE + 4099 and item1.ids[0, -1] == TEXT_BASE + 4097


def test_whisper_frames_rule():
    assert T.whisper_frames(16000) == 51  # 1000 ms / 20 + 1
    assert T.whisper_frames(48000) == 151


def test_spoken_prompt_needs_audio():
    with pytest.raises(ValueError):
        T.a1a2(0)


def test_deinterleave_against_a_hand_built_delay():
    # Frame t of layer i sits at step t + i + 1; fill everything else with a marker.
    frames = np.arange(5 * 7).reshape(5, 7) + 1000
    steps = np.full((7, 5 + 7), -1)
    for t in range(5):
        for i in range(7):
            steps[i, t + i + 1] = frames[t, i]
    assert np.array_equal(T.deinterleave(steps), frames)
    assert T.deinterleave(steps[:, :7]).shape == (0, 7)  # the delay not yet filled: no frame


def test_frame_ready_follows_the_delay():
    assert [T.frame_ready(s) for s in range(9)] == [None] * 7 + [0, 1]


def test_frames_to_codes_depth_first():
    frame = np.array([[10, 20, 30, 31, 21, 32, 33]])
    c0, c1, c2 = T.frames_to_codes(frame)
    assert c0.tolist() == [10] and c1.tolist() == [20, 21] and c2.tolist() == [30, 31, 32, 33]
    two = np.array([[1, 2, 3, 4, 5, 6, 7], [8, 9, 10, 11, 12, 13, 14]])
    c0, c1, c2 = T.frames_to_codes(two)
    assert c0.tolist() == [1, 8] and c1.tolist() == [2, 5, 9, 12]
    assert c2.tolist() == [3, 4, 6, 7, 10, 11, 13, 14]


def test_special_ids_in_middle_layers_do_not_crash():
    # _eoa / _pad_a where a code belongs: the nearest earlier code of that codebook stands in.
    frames = np.array([[1, 2, 3, 4, 5, 6, 7], [8, T.EOA, 10, T.PAD_A, 12, 13, 14]])
    c0, c1, c2 = T.frames_to_codes(frames)
    assert c1.tolist() == [2, 5, 5, 12]
    assert c2.tolist() == [3, 4, 6, 7, 10, 10, 13, 14]
    first = T.frames_to_codes(np.array([[T.PAD_A] * 7]))
    assert all(c.tolist() == [0] * len(c) for c in first)  # nothing earlier: code 0
    assert all(c.max() < 4096 for c in T.frames_to_codes(frames))
