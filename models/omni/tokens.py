"""Mini-Omni's token layout: one id space for text and 7 SNAC audio layers, the prompts for each
task, the delay pattern between layers and the mapping of 7 tokens per frame to SNAC codes.

Ids are global (as the model's embedding table and head see them) unless a name says "local":
an audio layer's local id is its SNAC code (0..4095) or one of its specials (4096..4100).
The 8 input streams are ordered audio layers 0..6, then text (index 7), as in the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TEXT_VOCAB = 152000  # Qwen2 BPE (151936) + the omni text specials, padded
AUDIO_VOCAB = 4160  # 4096 SNAC codes + specials, padded, per layer
N_AUDIO = 7  # SNAC 24 kHz codes per frame: 1 + 2 + 4
N_STREAMS = N_AUDIO + 1
TEXT = N_AUDIO  # stream index of the text
PADDED_VOCAB = TEXT_VOCAB + N_AUDIO * AUDIO_VOCAB  # 181120: one head covers every stream
CODEBOOK = 4096

# text specials (global ids)
EOT, PAD_T, INPUT_T, ANSWER_T, ASR = 151936, 151937, 151938, 151939, 151940
# audio specials (local ids, the same in every layer)
EOA, PAD_A, INPUT_A, ANSWER_A, SPLIT = 4096, 4097, 4098, 4099, 4100


def audio_shift(layer: int) -> int:
    """Offset of audio layer `layer` in the global id space (and in the head's columns)."""
    return TEXT_VOCAB + AUDIO_VOCAB * layer


def stream_columns(stream: int) -> tuple[int, int]:
    """[start, end) of a stream's slice of the 181120-wide logits."""
    if stream == TEXT:
        return 0, TEXT_VOCAB
    return audio_shift(stream), audio_shift(stream) + AUDIO_VOCAB


def to_global(local: np.ndarray) -> np.ndarray:
    """[7, ...] local audio ids -> global ids (layer i shifted by audio_shift(i))."""
    local = np.asarray(local, dtype=np.int64)
    shifts = np.array([audio_shift(i) for i in range(N_AUDIO)], dtype=np.int64)
    return local + shifts.reshape((N_AUDIO,) + (1,) * (local.ndim - 1))


# ---- prompts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    """What the model reads before answering.

    ids: [8, T] global ids (audio streams 0..6, text 7). Where `audio_frames` > 0, positions
    1..audio_frames of the audio streams are overwritten by the adapted whisper features.
    """

    task: str
    ids: np.ndarray
    audio_frames: int = 0

    @property
    def length(self) -> int:
        return self.ids.shape[1]


def _audio_rows(local_row: list[int]) -> np.ndarray:
    return to_global(np.tile(np.asarray(local_row, np.int64), (N_AUDIO, 1)))


def _stack(audio_local: list[int], text: list[int]) -> np.ndarray:
    assert len(audio_local) == len(text)
    return np.vstack([_audio_rows(audio_local), np.asarray(text, np.int64)[None]])


def _audio_in(task: str, frames: int, audio_last: int, text_last: int) -> Prompt:
    if frames < 1:
        raise ValueError("a spoken prompt needs at least one audio frame")
    audio = [INPUT_A] + [PAD_A] * frames + [EOA, audio_last]
    text = [INPUT_T] + [PAD_T] * frames + [EOT, text_last]
    return Prompt(task, _stack(audio, text), frames)


def a1a2(frames: int) -> Prompt:
    """Speech in, speech (and its text) out."""
    return _audio_in("A1A2", frames, ANSWER_A, ANSWER_T)


def a1t2(frames: int) -> Prompt:
    """Speech in, text out."""
    return _audio_in("A1T2", frames, PAD_A, ANSWER_T)


def asr(frames: int) -> Prompt:
    """Speech in, its transcript out."""
    return _audio_in("ASR", frames, PAD_A, ASR)


def t1a2(text_ids: list[int]) -> Prompt:
    n = len(text_ids)
    return Prompt("T1A2", _stack([PAD_A] * (n + 2) + [ANSWER_A], [INPUT_T, *text_ids, EOT, ANSWER_T]))


def t1t2(text_ids: list[int]) -> Prompt:
    n = len(text_ids)
    return Prompt("T1T2", _stack([PAD_A] * (n + 3), [INPUT_T, *text_ids, EOT, ANSWER_T]))


def text_guided_batch(frames: int) -> tuple[Prompt, Prompt]:
    """The batch of two: item 0 answers in speech (its audio tokens are used), item 1 in text
    (its text token is used, and guides item 0's speech)."""
    return a1a2(frames), a1t2(frames)


def whisper_frames(samples: int, rate: int = 16000) -> int:
    """How many 20 ms whisper frames of a clip the prompt carries (the original's rule)."""
    return int(samples * 1000 / rate / 20) + 1


# ---- the delay pattern and SNAC codes ------------------------------------------------------


def delay(layer: int) -> int:
    """Audio layer i lags the text by i+1 steps: at answer step s it carries frame s-(i+1)."""
    return layer + 1


def frame_ready(step: int) -> int | None:
    """The frame completed by answer step `step` (0-based), or None while the delay fills."""
    frame = step - delay(N_AUDIO - 1)
    return frame if frame >= 0 else None


def deinterleave(steps: np.ndarray) -> np.ndarray:
    """[7, S] local audio ids as generated -> [F, 7] frames, F = S - 7: layer i drops its first
    i+1 outputs (the delay) and everything is cut to the frames all layers have reached."""
    steps = np.asarray(steps)
    frames = steps.shape[1] - delay(N_AUDIO - 1)
    if frames <= 0:
        return np.zeros((0, N_AUDIO), np.int64)
    return np.stack([steps[i, delay(i) : delay(i) + frames] for i in range(N_AUDIO)], axis=1)


# Depth-first order of a frame's 7 tokens: (codebook, index within the frame)
_FRAME_ORDER = ((0, 0), (1, 0), (2, 0), (2, 1), (1, 1), (2, 2), (2, 3))


def frames_to_codes(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[F, 7] local ids -> SNAC codes ([F], [2F], [4F]).

    A special id where a code belongs (a model that stops mid-frame emits `_eoa` or `_pad_a` in
    some layers) would index outside the codebook; it is replaced by the nearest earlier code of
    the same codebook (0 if none), which keeps the sound continuous instead of crashing.
    """
    frames = np.asarray(frames, dtype=np.int64).reshape(-1, N_AUDIO)
    count = frames.shape[0]
    codes = [np.zeros(count * 2**k, np.int64) for k in range(3)]
    for column, (book, offset) in enumerate(_FRAME_ORDER):
        codes[book][offset :: 2**book] = frames[:, column]
    return tuple(_fill_specials(c) for c in codes)  # type: ignore[return-value]


def _fill_specials(codes: np.ndarray) -> np.ndarray:
    valid = codes < CODEBOOK
    if valid.all():
        return codes
    index = np.where(valid, np.arange(len(codes)), -1)
    last = np.maximum.accumulate(index)
    return np.where(last >= 0, codes[np.maximum(last, 0)], 0)
