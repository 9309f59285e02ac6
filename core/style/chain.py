"""The style post-processing a reply's audio goes through on its way to the speaker, chunk by
chunk: voice matching and intonation range, then pitch (and speed, for engines without their own
speed control), then loudness. Each stage keeps its own state across chunks so the joins are
seamless; `flush()` at the end of the reply returns what the stages still hold."""
from __future__ import annotations

from typing import Protocol

import numpy as np

from models.engine import Capabilities, Style


class AudioStage(Protocol):
    def process(self, chunk: np.ndarray) -> np.ndarray: ...

    def flush(self) -> np.ndarray: ...


class Gain:
    def __init__(self, db: float) -> None:
        self.factor = np.float32(10 ** (db / 20))

    def process(self, chunk: np.ndarray) -> np.ndarray:
        # Soft limit at full scale: a louder emotion must not clip.
        return np.tanh(chunk * self.factor) if self.factor > 1 else chunk * self.factor

    def flush(self) -> np.ndarray:
        return np.zeros(0, np.float32)


class StyleChain:
    def __init__(self, stages: list[AudioStage]) -> None:
        self.stages = stages

    def process(self, chunk: np.ndarray) -> np.ndarray:
        for stage in self.stages:
            chunk = stage.process(chunk)
        return chunk.astype(np.float32, copy=False)

    def flush(self) -> np.ndarray:
        tail = np.zeros(0, np.float32)
        for stage in self.stages:
            tail = np.concatenate([stage.process(tail) if len(tail) else tail, stage.flush()])
        return tail.astype(np.float32, copy=False)


def chain_for(style: Style, rate: int, capabilities: Capabilities,
              voice: tuple | None = None) -> StyleChain | None:
    """The stages this style needs on top of what the engine does itself; None when it needs none.
    `voice` is (the engine voice's profile, the reference speaker's profile) for voice matching."""
    from core.style.prosody import StreamingProsody
    from core.style.voice_match import StreamingVoiceMatcher

    stages: list[AudioStage] = []
    if voice is not None and not capabilities.voice_matching:
        stages.append(StreamingVoiceMatcher(rate, *voice))
    speed = 1.0 if capabilities.native_speed else style.speed
    if speed != 1.0 or style.pitch_semitones:
        stages.append(StreamingProsody(rate, speed, style.pitch_semitones))
    if style.energy_db:
        stages.append(Gain(style.energy_db))
    return StyleChain(stages) if stages else None
