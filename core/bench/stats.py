"""Small summaries for benchmark figures: median, p90 and spread."""
from __future__ import annotations

import resource
import sys

import numpy as np


def summary(values: list[float], digits: int = 1) -> dict:
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
    import jiwer

    norm = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(),
                          jiwer.Strip(), jiwer.ReduceToListOfListOfWords()])
    return jiwer.wer(reference, hypothesis, reference_transform=norm, hypothesis_transform=norm)
