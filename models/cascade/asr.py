"""Speech recognition with Whisper (CTranslate2 format) on the packaged Whisper base model.

faster-whisper always pads a turn to Whisper's 30 s window, so on a short question the encoder
spends most of its time on silence. Short turns here go straight to CTranslate2 with a window just
longer than the speech (the same tokens on the bundled questions; `voice-companion bench latency`
times it); turns longer than the window use faster-whisper's own long-form path.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Callable

import numpy as np

from models.engine import single_threaded, stop_if_cancelled
from models.engine import SPEECH_RATE as RATE

HOP = 160  # mel frames are 10 ms
FULL_FRAMES = 3000  # Whisper's 30 s window
MIN_FRAMES = 1000  # below a 10 s window Whisper base starts repeating itself on short turns
MARGIN_FRAMES = 100  # silence after the speech: Whisper expects to see the end of the utterance
MAX_PROMPT_TOKENS = 224  # Whisper's context is 448 tokens; the prompt may take half
MAX_CUTS = 64  # recognised prefixes kept of the current turn
MIN_REST_S = 8  # a growing turn's last part is decoded with at least this much audio (it still fits the 10 s window)
SPLICE_SLACK_WORDS = 3  # how many more of a decode's words than of the committed ones may go unmatched
FILLERS = frozenset({"um", "uh", "er", "erm", "hmm", "mm", "ah"})  # words a new decode may drop


def _word_key(word: str) -> str:
    return re.sub(r"[^\w']", "", word.lower())


def spliced(committed: str, decoded: str) -> str | None:
    """`committed` followed by what `decoded`, a decode of the same speech and more from its
    start, says after it: the words are aligned, so a decode that hears the start a little
    differently ("Uh, I'm cooking" / "I'm cooking") still continues the committed text unchanged.
    None when the decode does not reach the committed words' end (fillers aside)."""
    kept, new = committed.split(), decoded.split()
    if not kept:
        return decoded
    kept_keys = [_word_key(w) for w in kept]
    matcher = difflib.SequenceMatcher(None, kept_keys, [_word_key(w) for w in new], autojunk=False)
    blocks = [b for b in matcher.get_matching_blocks() if b.size]
    if not blocks or 2 * sum(b.size for b in blocks) < len(kept):
        return None
    last = blocks[-1]
    if not all(key in FILLERS for key in kept_keys[last.a + last.size :]):
        return None  # where the committed words end in the decode is not known
    # A last match of a single common word ("to") may be one further on in the decode, and what
    # lies between would be lost: the match must be a run, and the decode's words before it may
    # outnumber the committed ones by SPLICE_SLACK_WORDS at most.
    if last.size < min(2, last.a + last.size) or last.b - last.a > SPLICE_SLACK_WORDS:
        return None
    return " ".join([committed, *new[last.b + last.size :]])


def agreed_start(earlier: str, later: str) -> str:
    """The words `later` begins with that `earlier` begins with too (spelling and punctuation
    aside), as `later` writes them: what two decodes of a growing turn agree on."""
    old, new = earlier.split(), later.split()
    n = 0
    while n < min(len(old), len(new)) and _word_key(old[n]) == _word_key(new[n]):
        n += 1
    return " ".join(new[:n])


class WhisperAsr:
    def __init__(
        self, model_dir: Path, threads: int = 2, device: str = "cpu", compute_type: str = "int8", language: str = "en"
    ) -> None:
        """device, compute_type: CTranslate2's (see models.devices: cuda int8_float16, cpu int8)."""
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        self.device, self.compute_type = device, compute_type
        self.language = language
        self._model = WhisperModel(
            str(model_dir), device=device, compute_type=compute_type, cpu_threads=threads, num_workers=1
        )
        self._tokenizer = Tokenizer(
            self._model.hf_tokenizer, self._model.model.is_multilingual, task="transcribe", language=language
        )
        self._prompt = [*self._tokenizer.sot_sequence, self._tokenizer.no_timestamps]
        # The current turn as far as it was heard, and where it was recognised up to: (samples, text).
        self._turn = np.zeros(0, np.float32)
        self._cuts: list[tuple[int, str]] = []
        self._latest = ""  # the turn's text as last recognised
        self._agreed = ""  # the start of it that the last two decodes agreed on

    @single_threaded
    def transcribe_turn(self, audio: np.ndarray, cancelled: Callable[[], bool] | None = None) -> str:
        """Text of a turn that grows while the user speaks. A reply is prepared at every pause,
        each with the turn so far, and each of those ends in a pause: what was recognised of one
        is kept, and a later, longer version of the same turn decodes only the audio after the
        longest prefix already heard, with that prefix's text as Whisper's prompt. So by the end
        of the turn most of it is already text, whatever its length."""
        audio = audio.astype(np.float32, copy=False)
        start, before = self._heard_prefix(audio)
        rest = self.transcribe(audio[start:], cancelled, prompt=before) if len(audio) - start >= RATE // 10 else ""
        text = " ".join(t for t in (before, rest) if t)
        # What two decodes in a row agreed on stays the text's start, word for word, so that the
        # words a reply is prepared with only ever grow at the end (the chat model's cache keeps
        # the prompt's longest shared start: a first word heard differently would cost all of
        # it). Words at a pause that the next decode hears otherwise are not kept.
        if self._agreed:
            text = spliced(self._agreed, text) or text
        self._agreed = agreed_start(self._latest, text) if self._latest else ""
        self._latest = text
        if len(audio) > len(self._turn):
            self._turn = audio.copy()
        if len(audio) - start >= MIN_REST_S * RATE:  # heard with enough around it to build on
            self._cuts = [c for c in self._cuts if c[0] < len(audio)][-MAX_CUTS + 1 :] + [(len(audio), text)]
        return text

    def _heard_prefix(self, audio: np.ndarray) -> tuple[int, str]:
        """The longest recognised prefix of `audio` that leaves at least MIN_REST_S to decode
        (samples, text): Whisper hears a phrase or two alone much worse than a few seconds of
        speech. Audio that is neither a continuation of the turn kept nor an earlier version of
        it is a new turn: what was kept is dropped."""
        shared = min(len(audio), len(self._turn))
        if not np.array_equal(self._turn[:shared], audio[:shared]):
            self._turn, self._cuts = np.zeros(0, np.float32), []
            self._agreed = self._latest = ""
            return 0, ""
        usable = [c for c in self._cuts if c[0] <= min(shared, len(audio) - MIN_REST_S * RATE)]
        return max(usable, default=(0, ""))

    @single_threaded
    def transcribe(self, audio: np.ndarray, cancelled: Callable[[], bool] | None = None, prompt: str = "") -> str:
        """Text of 16 kHz mono float32 audio; empty for silence. `prompt`: what was said just
        before (Whisper reads it as context). A long turn is decoded window by window and
        `cancelled` is asked between windows (raises Cancelled)."""
        audio = audio.astype(np.float32, copy=False)
        if len(audio) < RATE // 10:
            return ""
        frames = max(MIN_FRAMES, len(audio) // HOP + MARGIN_FRAMES)
        if frames <= FULL_FRAMES:
            text = self._transcribe_window(audio, frames, prompt)
            if text is not None:
                return text
        return self._transcribe_long(audio, cancelled, prompt)

    def _prompt_for(self, previous: str) -> list[int]:
        if not previous:
            return self._prompt
        # Whisper's own layout: previous text after <|startofprev|>, at most half its context.
        context = self._tokenizer.encode(" " + previous.strip())[-(MAX_PROMPT_TOKENS - 1) :]
        return [self._tokenizer.sot_prev, *context, *self._prompt]

    def _transcribe_window(self, audio: np.ndarray, frames: int, previous: str = "") -> str | None:
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
        prompt = self._prompt_for(previous)
        result = self._model.model.generate(
            encoded,
            [prompt],
            beam_size=1,
            max_length=len(prompt) + budget,
            suppress_blank=True,
            suppress_tokens=[-1],
            return_no_speech_prob=True,
        )[0]
        if result.no_speech_prob > 0.8:
            return ""
        if len(result.sequences_ids[0]) >= budget:
            return None
        tokens = [t for t in result.sequences_ids[0] if t < self._tokenizer.eot]
        return self._tokenizer.decode(tokens).strip()

    def _transcribe_long(
        self, audio: np.ndarray, cancelled: Callable[[], bool] | None = None, previous: str = ""
    ) -> str:
        segments, _ = self._model.transcribe(
            audio,
            language=self.language,
            beam_size=1,
            temperature=0.0,
            without_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
            initial_prompt=previous or None,
        )
        texts = []
        for segment in segments:  # faster-whisper decodes the next window when asked for it
            stop_if_cancelled(cancelled)
            texts.append(segment.text.strip())
        return " ".join(texts).strip()
