"""The model's input at each position: the average of its 8 streams' embeddings.

Both runtimes take input embeddings (llama.cpp through `batch.embd`), so this one function makes
them from the shared embedding table, a torch tensor or a memory-mapped array alike.
"""

from __future__ import annotations

import numpy as np

from models.omni.tokens import N_AUDIO, N_STREAMS


def stream_average(table, ids: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
    """[8, T] global ids (+ adapted audio features [L, C] for positions 1..L) -> [T, C] float32.

    The features overwrite the 7 audio streams there; the text stream keeps its own token, so
    such a position is (7 * feature + text embedding) / 8.
    """
    ids = np.asarray(ids)
    assert ids.shape[0] == N_STREAMS
    rows = np.asarray(table[ids.reshape(-1)], dtype=np.float32).reshape(N_STREAMS, ids.shape[1], -1)
    if features is not None and len(features):
        rows[:N_AUDIO, 1 : 1 + len(features)] = np.asarray(features, np.float32)[None]
    return rows.mean(axis=0)
