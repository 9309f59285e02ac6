"""Speech recognition with Whisper (CTranslate2 format) on the packaged Whisper base model.

faster-whisper always pads a turn to Whisper's 30 s window; for a 3 s question the encoder then
spends ~0.55 s of 0.7 on silence. Short turns here go straight to CTranslate2 with a window just
longer than the speech (encoder ~0.04 s, same tokens on the bundled questions: see bench latency);
turns longer than the window use faster-whisper's own long-form path.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from models.engine import single_threaded

RATE = 16000
HOP = 160  # mel frames are 10 ms
FULL_FRAMES = 3000  # Whisper's 30 s window
MIN_FRAMES = 1000  # below a 10 s window Whisper base starts repeating itself on short turns
MARGIN_FRAMES = 100  # silence after the speech: Whisper expects to see the end of the utterance


class WhisperAsr:
    def __init__(self, model_dir: Path, threads: int = 2, device: str = "auto", language: str = "en") -> None:
        import ctranslate2
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        if device == "auto":
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        compute_type = "int8_float16" if device == "cuda" else "int8"
        self.language = language
        self._model = WhisperModel(str(model_dir), device=device, compute_type=compute_type,
                                   cpu_threads=threads, num_workers=1)
        self._tokenizer = Tokenizer(self._model.hf_tokenizer, self._model.model.is_multilingual,
                                    task="transcribe", language=language)
        self._prompt = [*self._tokenizer.sot_sequence, self._tokenizer.no_timestamps]

    @single_threaded
    def transcribe(self, audio: np.ndarray) -> str:
        """Text of 16 kHz mono float32 audio; empty for silence."""
        audio = audio.astype(np.float32, copy=False)
        if len(audio) < RATE // 10:
            return ""
        frames = max(MIN_FRAMES, len(audio) // HOP + MARGIN_FRAMES)
        if frames <= FULL_FRAMES:
            text = self._transcribe_window(audio, frames)
            if text is not None:
                return text
        return self._transcribe_long(audio)

    def _transcribe_window(self, audio: np.ndarray, frames: int) -> str | None:
        """The transcript, or None when decoding ran away (a loop): the caller then falls back."""
        import ctranslate2

        frames = -(-frames // 100) * 100  # whole seconds: fewer distinct shapes for the encoder
        # Pad the audio, not the features, so the silence looks as it does in a 30 s window.
        padded = np.zeros(frames * HOP, np.float32)
        padded[: len(audio)] = audio
        mel = self._model.feature_extractor(padded)[:, :frames]
        features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None], dtype=np.float32))
        encoded = self._model.model.encode(features, to_cpu=False)
        # People say at most ~4 words (~6 tokens) a second; running past that means a loop.
        budget = 16 + int(8 * len(audio) / RATE)
        result = self._model.model.generate(
            encoded, [self._prompt], beam_size=1, max_length=len(self._prompt) + budget,
            suppress_blank=True, suppress_tokens=[-1], return_no_speech_prob=True,
        )[0]
        if result.no_speech_prob > 0.8:
            return ""
        if len(result.sequences_ids[0]) >= budget:
            return None
        tokens = [t for t in result.sequences_ids[0] if t < self._tokenizer.eot]
        return self._tokenizer.decode(tokens).strip()

    def _transcribe_long(self, audio: np.ndarray) -> str:
        segments, _ = self._model.transcribe(
            audio, language=self.language, beam_size=1, temperature=0.0, without_timestamps=True,
            condition_on_previous_text=False, vad_filter=False,
        )
        return " ".join(s.text.strip() for s in segments).strip()
