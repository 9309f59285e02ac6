"""The text-guided decoding loop: two sequences step together; item 0's 7 audio tokens and item
1's text token are taken each step and fed back to both (item 1 gets `_pad_a` for audio).

Greedy, as the official settings (top_k=1). Text `_eot` is fed back once, then the text stream is
held at `_pad_t` while the audio finishes, and item 1 (whose only use is its text) stops. Audio
layer i is held at `_pad_a` for the first i+1 steps (the delay: it has no frame yet). Stops when
audio layer 6 says `_eoa`, when the context is full, or when cancelled (checked between steps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from models.engine import Cancelled
from models.omni import tokens as T
from models.omni.lm_backends import Backend, greedy


@dataclass(frozen=True)
class Step:
    index: int
    text: int | None  # a new text token (not a special), from item 1
    audio: np.ndarray  # [7] local ids item 0 produced this step
    frame: np.ndarray | None  # [7] local ids of the frame this step completed


@dataclass(frozen=True)
class Stop:
    reason: str  # "eoa", "max_length", "cancelled"
    steps: int


AUDIO_STREAMS = tuple(range(T.N_AUDIO))
TEXT_STREAM = (T.TEXT,)


def greedy_step(
    backend: Backend, inputs: list[np.ndarray | None], streams: list[tuple[int, ...]]
) -> list[np.ndarray | None]:
    """One step; each sequence's greedy ids in its `streams`. A backend with its own
    `step_greedy` reads them where the logits are (llama.cpp: in place, no copy of the row)."""
    own = getattr(backend, "step_greedy", None)
    if own is not None:
        return own(inputs, streams)
    return [
        None if row is None else np.array([greedy(row, s) for s in wanted])
        for row, wanted in zip(backend.step(inputs), streams)
    ]


def step_ids(audio_local: np.ndarray, text: int) -> np.ndarray:
    """[8, 1] global ids of one position."""
    return np.concatenate([T.to_global(np.asarray(audio_local)), [text]])[:, None]


def text_guided(
    backend: Backend,
    prompts: tuple[T.Prompt, T.Prompt],
    features: np.ndarray | None,
    cancelled: Callable[[], bool] = lambda: False,
    max_positions: int | None = None,
) -> Iterator[Step | Stop]:
    limit = min(max_positions or backend.config.block_size, backend.config.block_size)
    audio_prompt, text_prompt = prompts
    try:
        logits = backend.start(
            [backend.embed(audio_prompt.ids, features), backend.embed(text_prompt.ids, features)], cancelled
        )
    except Cancelled:
        yield Stop("cancelled", 0)
        return
    audio_ids = np.array([greedy(logits[0], i) for i in AUDIO_STREAMS])  # item 0's choices
    text_id = greedy(logits[1], T.TEXT)  # item 1's
    history: list[np.ndarray] = []
    text_over = False
    pads = np.full(T.N_AUDIO, T.PAD_A)
    position = audio_prompt.length
    step = 0
    while True:
        if cancelled():
            yield Stop("cancelled", step)
            return
        audio = np.where([step >= T.delay(i) for i in AUDIO_STREAMS], audio_ids, T.PAD_A)
        text = T.PAD_T if text_over else int(text_id)
        history.append(audio)
        ended = audio[T.N_AUDIO - 1] == T.EOA
        ready = T.frame_ready(step)
        frame = None
        if ready is not None and not ended:
            frame = np.array([history[ready + T.delay(i)][i] for i in range(T.N_AUDIO)])
        yield Step(step, text if text < T.EOT else None, audio, frame)
        if ended:
            yield Stop("eoa", step + 1)
            return
        position += 1
        step += 1
        if position >= limit:
            yield Stop("max_length", step)
            return
        text_over = text_over or text == T.EOT
        # Once the text has ended item 1's output is never read again: it stops stepping, and
        # the rest of the answer costs one sequence per step instead of two.
        guide = None if text_over else backend.embed(step_ids(pads, text))[0]
        chosen = greedy_step(backend, [backend.embed(step_ids(audio, text))[0], guide], [AUDIO_STREAMS, TEXT_STREAM])
        assert chosen[0] is not None  # item 0, the answer's audio, steps to the end
        audio_ids = chosen[0]
        if chosen[1] is not None:
            text_id = chosen[1][0]
