"""Emotions: each one sets both what the companion says (an instruction for the chat model) and
how it sounds (speed, pitch, intonation range, loudness and the voice model's expressiveness).

The prosody values are deliberately moderate: past roughly +-2 semitones or +-15% speed a
synthetic voice starts to sound processed rather than moved. `bench style` measures what each
one really changes against neutral.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Emotion:
    name: str
    instruction: str | None  # for the chat model's system prompt; None for neutral
    speed: float = 1.0  # multiplies the user's speed
    pitch_semitones: float = 0.0  # added to the user's pitch
    pitch_range: float = 1.0  # scales the intonation around the median pitch
    energy_db: float = 0.0
    expressiveness: float = 1.0  # scales the TTS's own variability (Piper's noise scales)


EMOTIONS: dict[str, Emotion] = {
    e.name: e
    for e in (
        Emotion("neutral", None),
        Emotion(
            "cheerful",
            "Sound cheerful and warm: upbeat words, a friendly exclamation now and then.",
            speed=1.08,
            pitch_semitones=1.5,
            pitch_range=1.3,
            energy_db=1.5,
            expressiveness=1.2,
        ),
        Emotion(
            "calm",
            "Sound calm and soothing: gentle, unhurried words.",
            speed=0.88,
            pitch_semitones=-1.0,
            pitch_range=0.75,
            energy_db=-2.0,
            expressiveness=0.7,
        ),
        Emotion(
            "sad",
            "Sound a little sad and subdued: quiet, simple, sympathetic words.",
            speed=0.85,
            pitch_semitones=-2.0,
            pitch_range=0.6,
            energy_db=-3.0,
            expressiveness=0.6,
        ),
        Emotion(
            "excited",
            "Sound excited and enthusiastic: energetic words and exclamations.",
            speed=1.15,
            pitch_semitones=2.5,
            pitch_range=1.45,
            energy_db=2.5,
            expressiveness=1.35,
        ),
        Emotion(
            "serious",
            "Sound serious and matter-of-fact: precise, sober words, no jokes.",
            speed=0.95,
            pitch_semitones=-1.5,
            pitch_range=0.8,
            energy_db=0.0,
            expressiveness=0.8,
        ),
    )
}


def get_emotion(name: str) -> Emotion:
    try:
        return EMOTIONS[name]
    except KeyError:
        raise ValueError(f"unknown emotion {name!r}; choose one of: {', '.join(EMOTIONS)}") from None
