"""Benchmarks: each is a function returning one JSON-ready dict of figures."""

from __future__ import annotations

import logging
from typing import Callable

log = logging.getLogger(__name__)


def _latency(turns: int | None, asr: str | None = None) -> dict:
    from bench.latency import run

    return run(turns or 12, asr=asr)


def _chat(turns: int | None) -> dict:
    from bench.chat import run

    return run(turns or 3)


def _duplex(turns: int | None) -> dict:
    from bench.duplex import run

    return run(turns)


def _style(turns: int | None) -> dict:
    import importlib

    from bench import style_emotion, style_prosody
    from bench.stats import peak_rss_mb
    from core.engines import load_cascade

    engine = load_cascade()
    result: dict[str, object] = {
        "bench": "style",
        "prosody": style_prosody.measure(engine, repeats=turns or 1),
        "emotions": style_emotion.measure(engine),
    }
    try:  # voice matching lands in its own module; measured when it is present
        result["voice_matching"] = importlib.import_module("bench.style_voice").measure(engine)
    except ModuleNotFoundError:
        log.warning("voice matching not measured", exc_info=True)
        result["voice_matching"] = "not built yet"
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def _omni(turns: int | None, device: str | None = None, quants: str | None = None) -> dict:
    from bench.omni import QUANTS, run

    return run(turns or 5, device=device or "cpu", quants=tuple(quants.split(",")) if quants else QUANTS)


def _soak(turns: int | None) -> dict:
    from bench.soak import run

    return run(minutes=float(turns or 60))  # --turns: the conversation's minutes


def _hearing(turns: int | None) -> dict:
    from bench.hearing import run

    return run(seed=turns or 0)  # --turns: the natural set's seed


def _natural(turns: int | None, asr: str | None = None) -> dict:
    from bench.listening import run

    return run(seed=turns or 0, asr=asr)  # --turns: the natural set's seed


def _startup(turns: int | None) -> dict:
    from bench.startup import run

    return run(starts=turns or 3)


BENCHES: dict[str, Callable[..., dict]] = {
    "startup": _startup,
    "soak": _soak,
    "hearing": _hearing,
    "natural": _natural,
    "omni": _omni,
    "latency": _latency,
    "chat": _chat,
    "duplex": _duplex,
    "style": _style,
}
