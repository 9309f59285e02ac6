"""Speaks assets/questions/questions.txt with the packaged Piper voice into small 16 kHz FLAC files
(q01.flac, ...; sample.flac is the first one). Run once when the list changes:
    .venv/bin/python scripts/make_questions.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile
import soxr

from models.cascade.tts import PiperTts
from models.registry import ModelStore

HERE = Path(__file__).resolve().parent.parent / "assets" / "questions"


def main() -> None:
    tts = PiperTts(ModelStore().ensure("piper-joe-medium"))
    lines = [q.strip() for q in (HERE / "questions.txt").read_text().splitlines() if q.strip()]
    for i, question in enumerate(lines, 1):
        audio = np.concatenate(list(tts.synthesize(question)))
        audio = soxr.resample(audio, tts.rate, 16000).astype(np.float32)
        soundfile.write(HERE / f"q{i:02d}.flac", audio, 16000, subtype="PCM_16")
        if i == 1:
            soundfile.write(HERE / "sample.flac", audio, 16000, subtype="PCM_16")
        print(f"q{i:02d}.flac  {len(audio) / 16000:.2f} s  {question}")


if __name__ == "__main__":
    main()
