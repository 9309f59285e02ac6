"""Small summaries for benchmark figures: median, p90 and spread."""

from __future__ import annotations

import logging
import resource
import sys
from collections.abc import Sequence

import jiwer  # the bench extra; imported here so a missing extra fails when the benchmarks load
import numpy as np


def summary(values: Sequence[float], digits: int = 1) -> dict:
    if not values:
        return {"n": 0}
    a = np.asarray(values, dtype=float)
    return {
        "n": int(a.size),
        "median": round(float(np.median(a)), digits),
        "p90": round(float(np.percentile(a, 90)), digits),
        "min": round(float(a.min()), digits),
        "max": round(float(a.max()), digits),
        "iqr": round(float(np.percentile(a, 75) - np.percentile(a, 25)), digits),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def word_error(reference: str | list[str], hypothesis: str | list[str]) -> float:
    """Word error rate (0..1) ignoring case, punctuation and spacing; lists are pooled."""
    norm = jiwer.Compose(
        [
            jiwer.ToLowerCase(),
            jiwer.RemovePunctuation(),
            jiwer.RemoveMultipleSpaces(),
            jiwer.Strip(),
            jiwer.ReduceToListOfListOfWords(),
        ]
    )
    return jiwer.wer(reference, hypothesis, reference_transform=norm, hypothesis_transform=norm)


CPU_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile", "neon")


def cpu_features() -> dict:
    """The CPU a figure was measured on: its model name, core count and the vector extensions
    that decide how fast CTranslate2, llama.cpp and torch run on it, plus what was kept out."""
    import os
    import platform

    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    name = value.strip()
                elif key.strip() in ("flags", "Features"):
                    flags = set(value.split())
    except OSError:  # not Linux: the model name from platform is what there is
        logging.getLogger(__name__).info("no /proc/cpuinfo: CPU flags not read", exc_info=True)
    result = {
        "model": name,
        "cores": os.cpu_count(),
        "flags": [f for f in CPU_FLAGS if f in flags],
        "kept_out": {k: os.environ[k] for k in ("CT2_FORCE_CPU_ISA", "ATEN_CPU_CAPABILITY") if k in os.environ},
    }
    try:  # what this llama.cpp build was compiled for (it picks no variant at run time)
        import llama_cpp

        info = llama_cpp.llama_print_system_info().decode()
        result["llama_cpp"] = " ".join(part.strip() for part in info.split("|") if "= 1" in part or "CPU" in part)
    except (ImportError, AttributeError, OSError):
        result["llama_cpp"] = None
    return result
