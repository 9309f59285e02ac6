"""bench style prosody: how exactly speed and pitch styling do what they are asked, what they cost
in intelligibility, whether streaming leaves seams, and how much latency they add per chunk.

Each reply is synthesized clause by clause, as the cascade streams it, so the chunk joins fall
where they do in a real reply. Duration is counted in samples; pitch is the median frame-wise F0
shift against the unstyled reply (core.style.pitch); intelligibility is the engine's own speech
recognizer on styled against unstyled speech of the same renderings. Seams: streamed against whole
at the chunk joins, and the sample step at the joins of the stretcher's own segments (each a
separate Rubber Band call, cross-faded at a quiet moment). Latency is the time until a
clause chunk's first styled part is out (`pieces`, as the session hands it on), with the whole
chunk's time and this thread's CPU time beside it (the machine may be shared),
and the look-ahead the stretcher holds back at the end of each chunk until the next one comes.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Iterator

import numpy as np
import soxr

from bench.stats import peak_rss_mb, summary, word_error
from core.style.pitch import compare_tracks, f0_track
from core.style.prosody import ENGINE, StreamingProsody, apply_prosody

# No numbers: the recognizer writes "ten" as "10", which would count as a word error.
REPLIES = (
    ("The weather today is sunny and mild,", "with a light breeze from the west,", "a good day for a walk."),
    ("I have added milk, bread and coffee to your shopping list,", "and I will remind you at the market."),
    ("Your meeting with the design team starts after lunch tomorrow,", "so there is time to finish the slides."),
    ("Remember to water the plants on the balcony,", "they looked a little dry this morning."),
    ("The museum is closed on Mondays,", "but the garden behind it stays open until sunset."),
    ("Would you like me to read the next chapter of the story,", "or shall we take a short break first?"),
)
SPEEDS = (0.5, 0.75, 1.25, 1.5, 2.0)
PITCHES = (-12.0, -4.0, 4.0, 12.0)
HEARD = ((0.75, 0.0), (1.25, 0.0), (1.5, 0.0), (1.0, -4.0), (1.0, -2.0), (1.0, 2.0), (1.0, 4.0), (1.5, 4.0))
STREAMED = (
    (0.5, 0.0),
    (2.0, 0.0),
    (1.0, -12.0),
    (1.0, 12.0),
    (0.75, 0.0),
    (1.5, 0.0),
    (1.0, 4.0),
    (1.0, -4.0),
    (0.75, 4.0),
    (1.5, -4.0),
)
TARGETS = {
    "speed_error_pct": 3.0,
    "pitch_error_cents": 25.0,
    "word_error_increase_points": 5.0,
    "added_latency_ms": 30.0,
}
DIGITS = {"duration_error_pct": 2, "max_abs_diff_vs_whole": 6, "join_step_over_own_p999": 2, "chunk_s": 2}

Row = tuple[str, str, str, float]  # group, setting, figure, value


def _typical(speed: float, semitones: float) -> bool:
    """Within the range the targets are set for (and the emotions use); the rest is reported apart."""
    return 0.75 <= speed <= 1.5 and abs(semitones) <= 4


def _accuracy(audio: np.ndarray, rate: int) -> Iterator[Row]:
    track = f0_track(audio, rate)
    for speed in SPEEDS:
        styled = apply_prosody(audio, rate, speed)
        shift = compare_tracks(track, f0_track(styled, rate), speed)
        yield "speed", f"{speed:g}", "duration_error_pct", 100 * (len(styled) * speed / len(audio) - 1)
        yield "speed", f"{speed:g}", "f0_drift_cents", shift.cents
        yield "pitch tracker", "all", "octave_slips", shift.octave_slips
    for semitones in PITCHES:
        styled = apply_prosody(audio, rate, semitones=semitones)
        shift = compare_tracks(track, f0_track(styled, rate, 2 ** (semitones / 12)), semitones=semitones)
        yield "pitch", f"{semitones:+g}", "f0_error_cents", shift.cents - 100 * semitones
        yield "pitch", f"{semitones:+g}", "duration_error_pct", 100 * (len(styled) / len(audio) - 1)
        yield "pitch tracker", "all", "octave_slips", shift.octave_slips


def _random_pieces(audio: np.ndarray, rate: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Cuts anywhere, mid-word included: a harder test of the joins than clause ends."""
    cuts = np.cumsum(rng.integers(rate // 20, rate * 3 // 2, size=64))
    return np.split(audio, cuts[cuts < len(audio)])


def _join_step(audio: np.ndarray, joins: np.ndarray) -> float:
    """The largest sample-to-sample step across a join, over the signal's own 99.9th percentile step."""
    joins = joins[(joins > 0) & (joins < len(audio))]
    own = float(np.percentile(np.abs(np.diff(audio)), 99.9))
    return float(np.max(np.abs(audio[joins] - audio[joins - 1]))) / own if len(joins) and own else 0.0


def _stream(
    pieces: list[np.ndarray], rate: int, speed: float, semitones: float, whole: np.ndarray, cut: str
) -> Iterator[Row]:
    stream = StreamingProsody(rate, speed, semitones)
    outs, taken, given = [], 0, 0
    timed = "typical" if _typical(speed, semitones) else "extreme"
    for piece in pieces:
        t0, c0 = time.perf_counter(), time.thread_time()
        parts, first = [], None
        for part in stream.pieces(piece):  # as the session hands a clause on
            first = first if first is not None else (time.perf_counter() - t0) * 1000
            parts.append(part)
        out = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        total, cpu = (time.perf_counter() - t0) * 1000, (time.thread_time() - c0) * 1000
        wall = first if first is not None else total
        taken, given = taken + len(piece), given + len(out)
        outs.append(out)
        if cut == "clause chunks":  # latency on chunks as the engine sends them
            yield "latency", timed, "chunk_ms", wall  # until its first sound is out
            yield "latency", timed, "whole_chunk_ms", total
            yield "latency", timed, "chunk_cpu_ms", cpu
            yield "latency", timed, "cpu_ms_per_second_of_audio", cpu * rate / max(1, len(piece))
            yield "latency", "all", "chunk_s", len(piece) / rate
            yield "latency", "all", "look_ahead_held_ms", (taken - given * speed) / rate * 1000
    outs.append(stream.flush())
    audio = np.concatenate(outs)
    common = min(len(audio), len(whole))
    yield "seams", cut, "max_abs_diff_vs_whole", float(np.max(np.abs(audio[:common] - whole[:common])))
    yield "seams", cut, "length_difference_samples", float(len(audio) - len(whole))
    yield "seams", cut, "join_step_over_own_p999", _join_step(audio, np.cumsum([len(o) for o in outs])[:-1])
    if cut == "clause chunks":  # the stretcher's own joins: where one call's segment meets the next
        yield "seams", "segment joins", "join_step_over_own_p999", _join_step(audio, np.array(stream.joins, int))
        yield "seams", "segment joins", "joins_per_second", len(stream.joins) * rate / max(1, len(audio))


def _streaming(chunks: list[np.ndarray], audio: np.ndarray, rate: int, rng: np.random.Generator) -> Iterator[Row]:
    for speed, semitones in STREAMED:
        whole = apply_prosody(audio, rate, speed, semitones)
        yield from _stream(chunks, rate, speed, semitones, whole, "clause chunks")
        yield from _stream(_random_pieces(audio, rate, rng), rate, speed, semitones, whole, "random cuts")


def _engine_speed(engine, clauses: tuple[str, ...], plain: np.ndarray, rate: int) -> Iterator[Row]:
    """The speed the engine's own control gives (Piper's length scale read off the voice's speed
    curve, the style chain making up what the scale does not do): speaking time at 1.0 over
    speaking time at each speed, against the speed asked. Each rendering is a new draw of Piper's
    timing, so single replies scatter by a few percent; the median says how the control is set."""
    from core.style.chain import engine_chain
    from models.cascade.tts import speaking_seconds
    from models.engine import Style

    for speed in SPEEDS:
        chain = engine_chain(engine, Style(speed=speed), rate)
        pieces = [chain.process(c) if chain else c for clause in clauses for c in engine.tts.synthesize(clause, speed)]
        audio = np.concatenate(pieces + ([chain.flush()] if chain else []))
        got = speaking_seconds(plain, rate) / speaking_seconds(audio, rate)
        yield "engine_speed", f"{speed:g}", "speed_error_pct", 100 * (got / speed - 1)


def _word_error(references: list[str], hypotheses: list[str]) -> float:
    return 100 * word_error(references, hypotheses)


def _transcripts(engine, audio: np.ndarray, rate: int) -> dict[str, str]:
    """What the recognizer hears of the reply plain and at each styled setting."""

    def heard(samples: np.ndarray) -> str:
        return engine.asr.transcribe(soxr.resample(samples, rate, 16000).astype(np.float32))

    texts = {"plain": heard(audio)}
    for speed, semitones in HEARD:
        texts[f"speed {speed:g}, pitch {semitones:+g}"] = heard(apply_prosody(audio, rate, speed, semitones))
    return texts


def _grouped(rows: list[Row]) -> dict:
    values: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for group, setting, figure, value in rows:
        values[group][setting][figure].append(value)
    return {
        group: {
            setting: {figure: summary(v, DIGITS.get(figure, 1)) for figure, v in figures.items()}
            for setting, figures in settings.items()
        }
        for group, settings in values.items()
    }


def measure(engine, repeats: int = 1) -> dict:
    """The figures over the replies, rendered anew `repeats` times (Piper samples its prosody)."""
    rate = engine.tts.rate
    rng = np.random.default_rng(0)
    rows: list[Row] = []
    references: list[str] = []
    transcripts: dict[str, list[str]] = defaultdict(list)
    for _ in range(max(1, repeats)):
        for clauses in REPLIES:
            chunks = [np.concatenate(list(engine.tts.synthesize(clause))) for clause in clauses]
            audio = np.concatenate(chunks)
            rows += _accuracy(audio, rate)
            rows += _streaming(chunks, audio, rate, rng)
            rows += _engine_speed(engine, clauses, audio, rate)
            references.append(" ".join(clauses))
            for setting, text in _transcripts(engine, audio, rate).items():
                transcripts[setting].append(text)

    figures = _grouped(rows)
    word_error = {setting: round(_word_error(references, texts), 1) for setting, texts in transcripts.items()}
    plain = word_error.pop("plain")
    worst_increase = round(max(word_error.values()) - plain, 1)
    speed_error = max(abs(s["duration_error_pct"]["median"]) for s in figures["speed"].values())
    pitch_error = max(abs(p["f0_error_cents"]["median"]) for p in figures["pitch"].values())
    engine_speed_error = max(abs(s["speed_error_pct"]["median"]) for s in figures["engine_speed"].values())
    return {
        "bench": "style_prosody",
        "engine": ENGINE,
        "rate": rate,
        "replies": len(REPLIES),
        "repeats": max(1, repeats),
        "targets": TARGETS,
        **figures,
        "word_error_pct": {"plain": plain, "styled": word_error, "worst_increase_points": worst_increase},
        "within_targets": {
            "speed": speed_error <= TARGETS["speed_error_pct"],
            "engine_speed": engine_speed_error <= TARGETS["speed_error_pct"],
            "pitch": pitch_error <= TARGETS["pitch_error_cents"],
            "word_error": worst_increase <= TARGETS["word_error_increase_points"],
            "latency": figures["latency"]["typical"]["chunk_ms"]["p90"] <= TARGETS["added_latency_ms"],
        },
        "peak_rss_mb": peak_rss_mb(),
    }
