"""What each emotion really changes in the voice, measured against neutral on the same sentences:
median F0, its range (each sentence's median absolute deviation of log-F0 from its own median, as
a ratio to neutral's: the emotion's intonation setting scales exactly this; a 10th-90th percentile
spread over a few sentences is ruled by a handful of creaky frames), loudness (RMS dB over voiced
audio) and speaking rate (words per second). The wording instruction is not measured here (it changes what the
chat model writes, not how a given sentence sounds)."""

from __future__ import annotations

import numpy as np

from core.style.chain import engine_chain
from core.style.emotion import EMOTIONS
from core.style.pitch import f0_track
from core.style.presets import Preset
from core.style.resolve import style_from_preset
from models.cascade.tts import speaking_seconds

SENTENCES = [
    "I found a lovely little cafe near the river this morning.",
    "The train leaves at half past seven, so we should pack tonight.",
    "Your plants look much healthier since you moved them to the window.",
    "Let me know when you want to go through the plan again.",
]


def _render(engine, style, text: str) -> np.ndarray:
    rate = engine.tts.rate
    chain = engine_chain(engine, style, rate)
    pieces = []
    for chunk in engine.tts.synthesize(text, style.speed, style.expressiveness):
        pieces.append(chain.process(chunk) if chain else chunk)
    if chain is not None:
        pieces.append(chain.flush())
    return np.concatenate(pieces)


def _figures(engine, style) -> dict:
    rate = engine.tts.rate
    f0s, spreads, levels, rates = [], [], [], []
    for text in SENTENCES:
        audio = _render(engine, style, text)
        track = f0_track(audio, rate)
        f0s.append(track[track > 0])
        semitones = 12 * np.log2(f0s[-1])
        spreads.append(float(np.median(np.abs(semitones - np.median(semitones)))))
        loud = np.abs(audio) > 0.01
        levels.append(20 * np.log10(np.sqrt(np.mean(np.square(audio[loud]))) + 1e-12))
        rates.append(len(text.split()) / speaking_seconds(audio, rate))
    return {
        "f0_median_hz": float(np.median(np.concatenate(f0s))),
        "f0_spread_st": spreads,
        "level_db": float(np.mean(levels)),
        "words_per_s": float(np.mean(rates)),
    }


def measure(engine) -> dict:
    base = _figures(engine, style_from_preset(Preset(name="neutral")))
    out = {
        "neutral": {
            "f0_median_hz": round(base["f0_median_hz"], 2),
            "f0_spread_st": round(float(np.median(base["f0_spread_st"])), 2),
            "level_db": round(base["level_db"], 2),
            "words_per_s": round(base["words_per_s"], 2),
        }
    }
    for name in EMOTIONS:
        if name == "neutral":
            continue
        got = _figures(engine, style_from_preset(Preset(name=name, emotion=name)))
        out[name] = {
            "f0_median_shift_st": round(12 * np.log2(got["f0_median_hz"] / base["f0_median_hz"]), 2),
            "f0_range_ratio": round(float(np.median(np.divide(got["f0_spread_st"], base["f0_spread_st"]))), 2),
            "f0_range_setting": EMOTIONS[name].pitch_range,
            "level_change_db": round(got["level_db"] - base["level_db"], 2),
            "rate_ratio": round(got["words_per_s"] / base["words_per_s"], 3),
        }
    return out
