"""bench latency: response latency of the streaming cascade over the bundled spoken questions,
against a naive cascade (whole transcript -> whole reply -> whole synthesis, no speculation)
measured in the same run on the same loaded models."""

from __future__ import annotations

import time
from pathlib import Path

from core.audio.io import load_voice
from bench.stats import peak_rss_mb, summary
from core.engines import DEFAULT_ASR, DEFAULT_LLM, load_cascade
from core.audio.vad import load_vad
from core.file_conversation import talk_once
from core.turns import TurnConfig
from models.cascade.engine import CascadeEngine

QUESTIONS = Path(__file__).resolve().parents[1] / "assets" / "questions"
STAGES = ("asr", "llm_first_token", "tts_first_audio", "first_clause_hold")


def _measure(engine: CascadeEngine, vad, voices: list, config: TurnConfig) -> dict:
    responses, eots, failures = [], [], []
    stages: dict[str, list[float]] = {s: [] for s in STAGES}
    for name, voice in voices:
        result = talk_once(engine, vad, voice, config)
        if result.latency is None or result.reason != "complete":
            failures.append(f"{name}: {result.reason}")
            continue
        responses.append(result.latency.response)
        eots.append(result.latency.end_of_turn)
        for s in STAGES:
            if s in result.latency.stages:
                stages[s].append(result.latency.stages[s])
    return {
        "response_ms": summary(responses),
        "end_of_turn_ms": summary(eots),
        "stages_ms": {s: summary(v) for s, v in stages.items()},
        "failures": failures,
    }


def run(turns: int = 12, asr: str | None = None) -> dict:
    files = sorted(QUESTIONS.glob("q*.flac"))
    voices = [(f.name, load_voice(f)) for f in (files * (turns // len(files) + 1))[:turns]]
    t0 = time.perf_counter()
    streaming = load_cascade(streaming=True, asr=asr)
    vad = load_vad()
    load_s = time.perf_counter() - t0
    naive = CascadeEngine(streaming.asr, streaming.chat, streaming.tts, streaming=False)
    config = TurnConfig()
    # The naive baseline waits for the whole turn: no reply is prepared during the pause.
    naive_config = TurnConfig(speculate_after_ms=config.end_of_turn_ms, end_of_turn_ms=config.end_of_turn_ms)
    talk_once(streaming, vad, voices[0][1], config)  # warm-up: first calls allocate
    ours = _measure(streaming, vad, voices, config)
    base = _measure(naive, vad, voices, naive_config)
    ratio = None
    if ours["response_ms"].get("median") and base["response_ms"].get("median"):
        ratio = round(base["response_ms"]["median"] / ours["response_ms"]["median"], 2)
    return {
        "bench": "latency",
        "turns": len(voices),
        "llm": DEFAULT_LLM,
        "asr": asr or DEFAULT_ASR,
        "end_of_turn_silence_ms": config.end_of_turn_ms,
        "speculate_after_ms": config.speculate_after_ms,
        "streaming": ours,
        "naive_baseline": base,
        "first_audio_speedup_vs_naive": ratio,
        "model_load_s": round(load_s, 2),
        "peak_rss_mb": peak_rss_mb(),
    }
