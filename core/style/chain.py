"""The style post-processing a reply's audio goes through on its way to the speaker, chunk by
chunk: the pitch contour (voice matching and the emotion's intonation range, by WORLD), then speed
for engines without their own speed control, and pitch when WORLD does not run (Rubber Band), then
loudness. Each stage keeps its own state across chunks so the joins are seamless; `flush()` at the
end of the reply returns what the stages still hold. `pieces(chunk)` hands the chunk on in parts as
the first stage finishes them (WORLD converts a clause block by block), so the first sound of a
clause does not wait for all of it."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Iterator, Protocol

import numpy as np

from models.engine import Capabilities, Engine, Style

if TYPE_CHECKING:
    from core.style.voice_match import VoiceProfile

# Voice matching's two ends: (the engine voice's profile, the reference speaker's profile).
VoiceProfiles = tuple["VoiceProfile", "VoiceProfile"]


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

    def pieces(self, chunk: np.ndarray) -> Iterator[np.ndarray]:
        """The styled chunk in parts, each as soon as it is ready; together they are `process(chunk)`."""
        first, rest = self.stages[0], self.stages[1:]
        parts = first.pieces(chunk) if hasattr(first, "pieces") else [first.process(chunk)]
        for part in parts:
            for stage in rest:
                part = stage.process(part)
            yield part.astype(np.float32, copy=False)

    def flush(self) -> np.ndarray:
        tail = np.zeros(0, np.float32)
        for stage in self.stages:
            tail = np.concatenate([stage.process(tail) if len(tail) else tail, stage.flush()])
        return tail.astype(np.float32, copy=False)


def engine_chain(engine: Engine, style: Style, rate: int, voice: VoiceProfiles | None = None) -> StyleChain | None:
    """`chain_for` this engine: what its capabilities leave to the core."""
    left = engine.speed_left(style.speed) if engine.capabilities.native_speed else 1.0
    return chain_for(style, rate, engine.capabilities, voice, left)


def chain_for(
    style: Style, rate: int, capabilities: Capabilities, voice: VoiceProfiles | None = None, speed_left: float = 1.0
) -> StyleChain | None:
    """The stages this style needs on top of what the engine does itself; None when it needs none.
    `voice` is (the engine voice's profile, the reference speaker's profile) for voice matching;
    `speed_left` what an engine with a native speed control could not reach of the speed."""
    from core.style.prosody import StreamingProsody
    from core.style.voice_match import StreamingVoiceMatcher, VoiceMapping, mapping_between

    stages: list[AudioStage] = []
    mapping = None
    if voice is not None and not capabilities.voice_matching:
        mapping = mapping_between(*voice)
    elif style.pitch_range != 1.0:
        mapping = VoiceMapping(f0_pivot_hz=None)  # each clause's own centre
    pitch = style.pitch_semitones
    if mapping is not None:
        # WORLD rewrites the contour anyway: the pitch setting joins it there instead of a second
        # processor running after it.
        mapping = replace(
            mapping, f0_range_scale=mapping.f0_range_scale * style.pitch_range, f0_shift_st=mapping.f0_shift_st + pitch
        )
        stages.append(StreamingVoiceMatcher(rate, mapping=mapping))
        pitch = 0.0
    speed = speed_left if capabilities.native_speed else style.speed
    if speed != 1.0 or pitch:
        stages.append(StreamingProsody(rate, speed, pitch))
    if style.energy_db:
        stages.append(Gain(style.energy_db))
    return StyleChain(stages) if stages else None
