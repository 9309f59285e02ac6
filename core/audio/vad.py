"""Silero voice activity on 16 kHz audio, run with onnxruntime straight from the packaged ONNX file.

The model looks at 512-sample windows (32 ms) and carries a recurrent state plus the last 64 samples
of the previous window as context; both live here so frames of any size can be pushed in.

From its zeroed state the model is slow to call the first syllables speech: a soft "Oh, I..." at
the very start scored 0.1-0.4 where the same words after a moment of quiet score over 0.5. So a
reset does not zero the state: it goes back to the state the model reaches after half a second of
a quiet room, worked out once when the model loads.
"""

from __future__ import annotations

import math

from pathlib import Path

import numpy as np
import onnxruntime

from models.registry import ModelStore
from models.registry.offline import quiet_onnxruntime
from core.audio.format import RATE

WINDOW = 512  # samples at 16 kHz
CONTEXT = 64
RESTED_WINDOWS = 16  # the quiet a reset stands for: about half a second
RESTED_HISS_RMS = 10 ** (-70 / 20)  # a quiet room through a laptop microphone


class SileroVad:
    def __init__(self, model_path: Path, providers: tuple[str, ...] = ("CPUExecutionProvider",)) -> None:
        quiet_onnxruntime()
        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(model_path),
            sess_options=opts,
            providers=list(providers),  # see models.devices
        )
        self._sr = np.array(RATE, dtype=np.int64)
        self._state = np.zeros((2, 1, 128), np.float32)
        self._context = np.zeros((1, CONTEXT), np.float32)
        hiss = np.random.default_rng(0).normal(0.0, RESTED_HISS_RMS, RESTED_WINDOWS * WINDOW).astype(np.float32)
        for window in hiss.reshape(RESTED_WINDOWS, WINDOW):
            self.window_probability(window)
        self._rested = (self._state.copy(), self._context.copy())
        self.reset()

    def reset(self) -> None:
        """Forget what was heard: back to the state after a moment of quiet."""
        self._state, self._context = self._rested[0].copy(), self._rested[1].copy()
        self._pending = np.zeros(0, np.float32)

    def window_probability(self, window: np.ndarray) -> float:
        """Speech probability of exactly one 512-sample window, advancing the state."""
        x = np.concatenate([self._context, window.reshape(1, WINDOW).astype(np.float32)], axis=1)
        prob, self._state = self._session.run(None, {"input": x, "state": self._state, "sr": self._sr})
        self._context = x[:, -CONTEXT:]
        return float(prob[0, 0])

    def push(self, samples: np.ndarray) -> list[float]:
        """Feed any number of samples; returns one probability per completed window."""
        return [prob for prob, _ in self.push_levels(samples)]

    def push_levels(self, samples: np.ndarray) -> list[tuple[float, float]]:
        """As `push`, with each window's power in dBFS: (probability, level)."""
        buf = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        n = len(buf) // WINDOW
        out = []
        for i in range(n):
            window = buf[i * WINDOW : (i + 1) * WINDOW]
            power = float(np.dot(window, window)) / WINDOW
            out.append((self.window_probability(window), 10 * math.log10(power + 1e-12)))
        self._pending = buf[n * WINDOW :]
        return out


def load_vad(store: ModelStore | None = None) -> SileroVad:
    """Silero VAD from the installed models, on the CPU (it is called every frame)."""
    from models.devices import plan_devices, probe_machine

    store = store or ModelStore()
    return SileroVad(
        store.ensure("silero-vad") / "silero_vad.onnx",
        providers=plan_devices("auto", probe_machine(torch=False)).vad.providers,
    )
