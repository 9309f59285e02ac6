"""bench hearing: how well and how late the cascade's recognizer hears natural speech.

Every turn of the natural set (several voices, pauses and fillers inside turns, background
speech, and two real people on a telephone call) is recognised three ways by the same Whisper
model: the plain decode (faster-whisper, the 30 s window, beam 1), the one-shot decode the
cascade used to do at the end of the turn, and the growing-turn decode (`transcribe_turn` at
every pause the turn detector reports, as the session does while the user speaks). Reported:
word error against what was said for each, and for the growing-turn decode the recognition left
after the end of the turn (the last call's time), which is what the user waits for. The same
measurement for the faster recognizer one can choose (Whisper tiny.en) follows, in the same run.
"""

from __future__ import annotations

import time

import numpy as np

from bench.stats import summary, word_error
from core.turns import TurnConfig, TurnDetector, TurnEventKind
from core.audio.format import RATE

TAIL = RATE // 10  # the session's 100 ms after the last voiced window


def pause_points(vad, audio: np.ndarray, config: TurnConfig = TurnConfig()) -> list[int]:
    """Where the session would prepare a reply inside this turn: the end of the speech before
    each pause."""
    vad.reset()
    detector = TurnDetector(config)
    points = []
    for prob, level in vad.push_levels(np.concatenate([audio, np.zeros(RATE, np.float32)])):
        for event in detector.push(prob, None, level):
            if event.kind in (TurnEventKind.PAUSE, TurnEventKind.END):
                points.append(min(len(audio), event.at + TAIL))
    vad.reset()
    return sorted(set(points))


def plain_decode(asr, audio: np.ndarray) -> str:
    """The reference decode: faster-whisper as it comes, the 30 s window, beam 1."""
    segments, _ = asr._model.transcribe(
        audio,
        language="en",
        beam_size=1,
        temperature=0.0,
        without_timestamps=True,
        condition_on_previous_text=False,
        vad_filter=False,
    )
    return " ".join(s.text.strip() for s in segments).strip()


def measure(asr, vad, turns) -> dict:
    rows = []
    for turn in turns:
        audio = turn.audio
        t0 = time.perf_counter()
        plain = plain_decode(asr, audio)
        plain_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        whole = asr.transcribe(audio)
        whole_s = time.perf_counter() - t0
        points = pause_points(vad, audio)
        for end in points[:-1]:
            asr.transcribe_turn(audio[:end])
        t0 = time.perf_counter()
        growing = asr.transcribe_turn(audio)
        last_s = time.perf_counter() - t0
        rows.append(
            {
                "speaker": turn.speaker,
                "seconds": round(turn.seconds, 1),
                "pauses": len(points) - 1,
                "reference": turn.text,
                "plain": plain,
                "whole": whole,
                "growing": growing,
                "plain_s": plain_s,
                "whole_s": whole_s,
                "growing_last_s": last_s,
            }
        )
    refs = [r["reference"] for r in rows]
    result = {
        "turns": len(rows),
        "word_error": {
            k: round(100 * word_error(refs, [r[k] for r in rows]), 2) for k in ("plain", "whole", "growing")
        },
        "recognition_after_end_ms": {
            "plain": summary([1000 * r["plain_s"] for r in rows]),
            "whole": summary([1000 * r["whole_s"] for r in rows]),
            "growing": summary([1000 * r["growing_last_s"] for r in rows]),
        },
        "per_turn": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in rows],
    }
    return result


def run(seed: int = 0) -> dict:
    from bench.natural import natural_set
    from core.audio.vad import load_vad
    from core.engines import threads
    from models.cascade.asr import WhisperAsr
    from models.registry import ModelStore

    vad = load_vad()
    turns = natural_set(seed)
    results = {}
    for model in ("whisper-base", "whisper-tiny-en"):
        asr = WhisperAsr(ModelStore().ensure_role(model, "asr"), threads=threads())
        asr.transcribe(np.random.default_rng(0).normal(0, 0.01, RATE).astype(np.float32))  # warm-up
        results[model] = measure(asr, vad, turns)
        del asr
    base, tiny = results["whisper-base"], results["whisper-tiny-en"]
    tiny.pop("per_turn")
    return {
        "bench": "hearing",
        "set": f"natural_set(seed={seed})",
        "model": "whisper-base",
        **base,
        "whisper-tiny-en": tiny,
    }
