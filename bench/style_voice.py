"""bench style_voice: how far voice matching moves the companion's voice toward a reference speaker,
what it costs in intelligibility, and how fast it runs.

There is no second real speaker on the machine, so the reference speakers are made from the
packaged voice: two by WORLD (pitch, range, vocal-tract length and tilt changed) and one by tape
speed (the recording played faster: pitch and formants rise together, no vocoder involved). Each
reference says other sentences than the reply, as a user's clip would. The voice speaks a little
differently every time (Piper samples its prosody), so every run renders the reference and the
reply anew, and the figures are medians over the runs with their spread.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict

import numpy as np
import soxr

from bench.stats import summary, word_error
from core.style.voice_match import (
    StreamingVoiceMatcher,
    VoiceMapping,
    VoiceProfile,
    analyze_reference,
    convert,
    formant_distance_st,
    formant_scale_distance_st,
    pitch_distance_st,
    profile_of_voice,
)
from core.audio.format import RATE

REFERENCE_TEXT = (  # about 20 s: a clip of a few sentences, as a user would record
    "I usually take the early train into town, because it is quiet and I can read for an hour. "
    "Last week I finished a long novel about a family of sailors who lived on a small island. "
    "The winters there were hard, and the children walked to school along the cliffs. "
    "What surprised me most was how funny it was! Have you ever read something like that?"
)
REPLY_SENTENCES = (
    "That sounds like a lovely way to start the day.",
    "Reading on the train is one of the few moments that belong only to you.",
    "If you enjoyed the sailors, you might like a book about lighthouse keepers next.",
    "Shall I find a few titles for you this evening?",
)
WORLD_SPEAKERS = {  # VoiceMapping settings, applied around the packaged voice's median F0
    "higher_shorter_tract": {"f0_shift_st": 6.0, "formant_ratio": 1.12},
    "lower_longer_tract_darker": {
        "f0_shift_st": -4.0,
        "f0_range_scale": 0.8,
        "formant_ratio": 0.9,
        "tilt_db_per_octave": -2.0,
    },
}
TAPE_SPEED = 1.2
SPEAKERS = WORLD_SPEAKERS | {
    "tape_speed": {"f0_shift_st": round(12 * math.log2(TAPE_SPEED), 2), "formant_ratio": TAPE_SPEED}
}
ASR_RATE = RATE  # the recogniser's


def measure(engine, runs: int = 3) -> dict:
    """For each reference speaker: median-F0 and formant distance to the reference (semitones)
    before and after matching, and their ratio (matching should at least halve it); word error of
    the matched reply next to the plain one; the matcher's real-time factor and added latency."""
    tts = engine.tts
    source = profile_of_voice(tts)
    text = " ".join(REPLY_SENTENCES)
    figures: dict[str, dict[str, list[float]]] = {name: {} for name in SPEAKERS}
    mappings: dict[str, list[VoiceMapping]] = {name: [] for name in SPEAKERS}
    plain_wer, first, wall, cpu, seconds, own_f0, own_formant = [], [], [], [], [], [], []
    for _ in range(runs):
        references = _references(tts, source)
        chunks = [_speak(tts, sentence) for sentence in REPLY_SENTENCES]
        before = analyze_reference(np.concatenate(chunks), tts.rate)
        own_f0.append(pitch_distance_st(source, before))
        own_formant.append(formant_distance_st(source, before))
        plain_wer.append(word_error(text, engine.asr.transcribe(_to_asr(np.concatenate(chunks), tts.rate))))
        for name, reference in references.items():
            matcher = StreamingVoiceMatcher(tts.rate, source, reference)
            mappings[name].append(matcher.mapping)
            pieces = []
            for chunk in chunks:
                start, start_cpu = time.perf_counter(), time.thread_time()
                blocks = matcher.pieces(chunk)
                pieces.append(next(blocks, np.zeros(0, np.float32)))
                first.append(time.perf_counter() - start)  # what the listener waits for
                pieces.extend(blocks)
                wall.append(time.perf_counter() - start)
                cpu.append(time.thread_time() - start_cpu)
                seconds.append(len(chunk) / tts.rate)
            matched = np.concatenate(pieces + [matcher.flush()])
            after = analyze_reference(matched, tts.rate)
            row = figures[name]
            for key, distance in (
                ("f0", pitch_distance_st),
                ("formant", formant_distance_st),
                ("formant_scale", formant_scale_distance_st),
                ("tilt", _tilt_distance),
            ):
                row.setdefault(f"{key}_before", []).append(distance(before, reference))
                row.setdefault(f"{key}_after", []).append(distance(after, reference))
            row.setdefault("word_error", []).append(word_error(text, engine.asr.transcribe(_to_asr(matched, tts.rate))))
    return {
        "bench": "style_voice",
        "runs": runs,
        "source_voice": _without_envelope(source),
        "plain_word_error": summary(plain_wer, digits=3),
        # The plain reply against the voice's own profile: how much the voice itself varies from one
        # text and rendering to the next. No "after" distance can be trusted below this.
        "voice_against_itself_st": {"f0": summary(own_f0, digits=2), "formant": summary(own_formant, digits=2)},
        "speakers": {name: _speaker_figures(SPEAKERS[name], mappings[name], figures[name]) for name in SPEAKERS},
        # Wall time includes whatever else the machine runs; CPU time is the matcher's own cost.
        "real_time_factor_per_chunk": summary([w / s for w, s in zip(wall, seconds)], digits=3),
        "cpu_time_factor_per_chunk": summary([c / s for c, s in zip(cpu, seconds)], digits=3),
        # A clause is converted block by block: its first sound waits for the first block only.
        "added_latency_ms_per_chunk": summary([1000 * f for f in first]),
        "whole_chunk_ms": summary([1000 * w for w in wall]),
        "chunk_seconds": summary(seconds, digits=2),
    }


def _references(tts, source: VoiceProfile) -> dict[str, VoiceProfile]:
    speech = _speak(tts, REFERENCE_TEXT)
    references = {}
    for name, settings in WORLD_SPEAKERS.items():
        other = convert(speech, tts.rate, VoiceMapping(source.f0_median_hz, **settings))
        references[name] = analyze_reference(other, tts.rate)
    # Resampled as if recorded at a higher rate, played at the voice's: every frequency x TAPE_SPEED.
    faster = soxr.resample(speech, tts.rate * TAPE_SPEED, tts.rate)
    references["tape_speed"] = analyze_reference(faster, tts.rate)
    return references


def _speaker_figures(made_with: dict, mappings: list[VoiceMapping], row: dict[str, list[float]]) -> dict:
    out = {
        "made_with": made_with,
        "estimated_mapping": {
            k: round(float(np.median([asdict(m)[k] for m in mappings])), 3) for k in asdict(mappings[0])
        },
    }
    for key in ("f0", "formant"):
        ratios = [a / max(b, 1e-6) for a, b in zip(row[f"{key}_after"], row[f"{key}_before"])]
        out[f"{key}_distance_st"] = {
            "before": summary(row[f"{key}_before"], digits=2),
            "after": summary(row[f"{key}_after"], digits=2),
            "ratio": summary(ratios, digits=2),
            "halved": bool(np.median(ratios) <= 0.5),
        }
    # The coarser formant check (each speaker against a neutral tube): it under-reads distances.
    out["formant_scale_distance_st"] = {
        "before": summary(row["formant_scale_before"], digits=2),
        "after": summary(row["formant_scale_after"], digits=2),
    }
    # No ratio: some references keep the voice's own tilt, and a ratio of two small numbers is noise.
    out["tilt_distance_db_per_octave"] = {
        "before": summary(row["tilt_before"], digits=2),
        "after": summary(row["tilt_after"], digits=2),
    }
    out["word_error"] = summary(row["word_error"], digits=3)
    return out


def _tilt_distance(a: VoiceProfile, b: VoiceProfile) -> float:
    return abs(a.tilt_db_per_octave - b.tilt_db_per_octave)


def _without_envelope(profile: VoiceProfile) -> dict:
    return {k: v for k, v in profile.to_json().items() if k != "envelope_db"}


def _speak(tts, text: str) -> np.ndarray:
    return np.concatenate(list(tts.synthesize(text)))


def _to_asr(audio: np.ndarray, rate: int) -> np.ndarray:
    return soxr.resample(audio, rate, ASR_RATE).astype(np.float32)
