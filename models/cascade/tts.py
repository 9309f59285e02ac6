"""Text to speech with Piper (VITS, ONNX) on the packaged voice."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np


class PiperTts:
    def __init__(self, voice_dir: Path, threads: int = 2) -> None:
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig

        # Built here rather than by PiperVoice.load so the thread count is ours to set: the voice
        # shares two cores with the chat model, which keeps writing while it speaks.
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        config = json.loads((voice_dir / "voice.onnx.json").read_text(encoding="utf-8"))
        session = onnxruntime.InferenceSession(str(voice_dir / "voice.onnx"), sess_options=options,
                                               providers=["CPUExecutionProvider"])
        self._voice = PiperVoice(session=session, config=PiperConfig.from_dict(config))
        self.rate: int = self._voice.config.sample_rate

    def synthesize(self, text: str, speed: float = 1.0, expressiveness: float = 1.0) -> Iterator[np.ndarray]:
        """Float32 audio for `text`, one array per sentence Piper finds in it.

        Speed uses Piper's own length scale (pitch stays put): the voice itself talks faster.
        Expressiveness scales the voice's noise scales: how much its pitch, timing and timbre vary
        (1.0 is the voice's own setting; lower is flatter and calmer, higher livelier).
        """
        from piper import SynthesisConfig

        own = self._voice.config
        config = SynthesisConfig(length_scale=1.0 / max(0.25, speed),
                                 noise_scale=own.noise_scale * expressiveness,
                                 noise_w_scale=own.noise_w_scale * expressiveness)
        for chunk in self._voice.synthesize(text, syn_config=config):
            yield chunk.audio_float_array.astype(np.float32, copy=False)


def trim_tail(samples: np.ndarray, rate: int, keep_ms: int = 60, floor: float = 0.01) -> np.ndarray:
    """Shorten the silence a synthesized piece ends with. Piper closes every piece as if it ended a
    sentence (~150 ms of silence); inside a sentence that reads as a hesitation."""
    loud = np.flatnonzero(np.abs(samples) > floor)
    if len(loud) == 0:
        return samples
    return samples[: min(len(samples), loud[-1] + 1 + rate * keep_ms // 1000)]
