"""From what the user chose (a preset, an emotion, sliders) to the Style an engine receives."""

from __future__ import annotations

from core.style.emotion import get_emotion
from core.style.presets import PITCH_RANGE, SPEED_RANGE, Preset
from models.engine import Style


def style_from_preset(preset: Preset, voice_reference_path: str | None = None) -> Style:
    """The user's speed and pitch, shaped by the preset's emotion (which also sets the wording)."""
    emotion = get_emotion(preset.emotion)
    return Style(
        speed=min(max(preset.speed * emotion.speed, SPEED_RANGE[0]), SPEED_RANGE[1]),
        pitch_semitones=min(max(preset.pitch + emotion.pitch_semitones, PITCH_RANGE[0]), PITCH_RANGE[1]),
        pitch_range=emotion.pitch_range,
        energy_db=emotion.energy_db,
        expressiveness=emotion.expressiveness,
        instruction=emotion.instruction,
        persona=preset.persona,
        voice_reference=voice_reference_path,
    )
