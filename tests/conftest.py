"""Shared fixtures. Real models come from the installed model packs, assembled once into a data
folder kept beside the checkout (never the user's own), and loaded once per test session."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("VOICE_COMPANION_DATA", str(ROOT / ".cache" / "data"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def stack():
    """The default cascade engine and voice activity model, loaded once."""
    from core.companion import load_cascade, load_vad

    return load_cascade(), load_vad()


@pytest.fixture(scope="session")
def speak(stack):
    """Synthesizes a sentence with the packaged voice as 16 kHz mono float32: a user's question."""
    import soxr

    engine, _ = stack

    def speak(text: str, lead_ms: int = 300) -> np.ndarray:
        audio = np.concatenate(list(engine.tts.synthesize(text)))
        audio = soxr.resample(audio, engine.tts.rate, 16000).astype(np.float32)
        loud = np.flatnonzero(np.abs(audio) > 0.02)  # the voice's own lead-in and tail silence
        audio = audio[loud[0] : loud[-1] + 1]
        return np.concatenate([np.zeros(16 * lead_ms, np.float32), audio])

    return speak


def word_error(reference: str, hypothesis: str) -> float:
    import jiwer

    norm = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(),
                          jiwer.Strip(), jiwer.ReduceToListOfListOfWords()])
    return jiwer.wer(reference, hypothesis, reference_transform=norm, hypothesis_transform=norm)
