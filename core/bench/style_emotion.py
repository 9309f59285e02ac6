"""What each emotion really changes in the voice, measured against neutral on the same sentences:
median F0 and its range (10th-90th percentile, semitones), loudness (RMS dB over voiced audio) and
speaking rate (words per second). The wording instruction is not measured here (it changes what the
chat model writes, not how a given sentence sounds)."""
from __future__ import annotations

import numpy as np

from core.style.chain import chain_for
from core.style.emotion import EMOTIONS
from core.style.pitch import f0_track
from core.style.presets import Preset
from core.style.resolve import style_from_preset

SENTENCES = [
    "I found a lovely little cafe near the river this morning.",
    "The train leaves at half past seven, so we should pack tonight.",
    "Your plants look much healthier since you moved them to the window.",
    "Let me know when you want to go through the plan again.",
]


def _render(engine, style, text: str) -> np.ndarray:
    rate = engine.tts.rate
    chain = chain_for(style, rate, engine.capabilities)
    pieces = []
    for chunk in engine.tts.synthesize(text, style.speed, style.expressiveness):
        pieces.append(chain.process(chunk) if chain else chunk)
    if chain is not None:
        pieces.append(chain.flush())
    return np.concatenate(pieces)


def _figures(engine, style) -> dict:
    rate = engine.tts.rate
    f0s, levels, rates = [], [], []
    for text in SENTENCES:
        audio = _render(engine, style, text)
        track = f0_track(audio, rate)
        f0s.append(track[track > 0])
        loud = np.abs(audio) > 0.01
        levels.append(20 * np.log10(np.sqrt(np.mean(np.square(audio[loud]))) + 1e-12))
        voiced = np.flatnonzero(loud)
        rates.append(len(text.split()) / ((voiced[-1] - voiced[0]) / rate))
    f0 = np.concatenate(f0s)
    p10, p50, p90 = np.percentile(f0, [10, 50, 90])
    return {"f0_median_hz": float(p50), "f0_range_st": float(12 * np.log2(p90 / p10)),
            "level_db": float(np.mean(levels)), "words_per_s": float(np.mean(rates))}


def measure(engine) -> dict:
    base = _figures(engine, style_from_preset(Preset(name="neutral")))
    out = {"neutral": {k: round(v, 2) for k, v in base.items()}}
    for name in EMOTIONS:
        if name == "neutral":
            continue
        got = _figures(engine, style_from_preset(Preset(name=name, emotion=name)))
        out[name] = {
            "f0_median_shift_st": round(12 * np.log2(got["f0_median_hz"] / base["f0_median_hz"]), 2),
            "f0_range_change_st": round(got["f0_range_st"] - base["f0_range_st"], 2),
            "level_change_db": round(got["level_db"] - base["level_db"], 2),
            "rate_ratio": round(got["words_per_s"] / base["words_per_s"], 3),
        }
    return out
