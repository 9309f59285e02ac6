"""Benchmarks: each is a function returning one JSON-ready dict of figures."""
from __future__ import annotations

from typing import Callable


def _latency(turns: int | None) -> dict:
    from core.bench.latency import run

    return run(turns or 12)


def _chat(turns: int | None) -> dict:
    from core.bench.chat import run

    return run(turns or 3)


def _duplex(turns: int | None) -> dict:
    from core.bench.duplex import run

    return run(turns)


BENCHES: dict[str, Callable[..., dict]] = {"latency": _latency, "chat": _chat, "duplex": _duplex}
