"""Turn a chat model's streamed text into clauses a voice can say.

Two jobs, both incremental: cut the stream into clauses as early as they can be spoken well
(the first one as soon as it is a few words long, so the voice starts early), and remove what a
voice must not read aloud: markdown marks, list bullets, code, links and emoji.
"""

from __future__ import annotations

import re

_FENCE = "```"
_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*(?=\s)")
_CLAUSE_END = re.compile(r"(?:[,;:]|\s[-–—]|[-–—]{2})(?=\s)")
_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\U00002600-\U000027bf\U0001f900-\U0001f9ff\u2190-\u21ff\u2b00-\u2bff\ufe0f\u200d\u20e3]+"
)
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_URL = re.compile(r"https?://\S+")
_INLINE_CODE = re.compile(r"`[^`]*`?")
_BULLET = re.compile(r"(?m)^\s*(?:[-*+•]|\d{1,2}[.)])(?:\s+|$)")
_HEADING = re.compile(r"(?m)^\s*#{1,6}\s*")
_EMPHASIS = re.compile(r"\*{1,3}|_{2,3}|~~|(?<!\w)_(?=\w)|(?<=\w)_(?!\w)")
_LEFTOVER_MARKS = re.compile(r"[*#`|<>{}\[\]^=~\\]")
_SPACES = re.compile(r"\s+")
_LINE_BREAK = re.compile(r"\n")
# Words a spoken phrase often starts with: a long first sentence may be cut before one of them,
# where a speaker could take a breath, so the voice need not wait for the whole sentence.
_PHRASE_START = re.compile(
    r"\s(?=(?:is|are|was|were|has|have|because|and|but|so|with|in|on|at|from|to|of|for|that|which|"
    r"when|where|if|about|around|approximately|by|like|after|before|than)\s)",
    re.I,
)
_SPACE_BEFORE_MARK = re.compile(r"\s+([.,!?;:])")
_WHOLE_WORD = re.compile(r"\S+\s")  # a word the stream has finished: a space came after it


def _phrase_starts(text: str, min_words: int) -> list[int]:
    """Where a phrase-opening word begins in `text`, after at least `min_words` words."""
    return [m.start() for m in _PHRASE_START.finditer(text) if len(text[: m.start()].split()) >= min_words]


def speakable(text: str) -> str:
    """Strip everything a voice should not read from one piece of text."""
    text = _LINK.sub(r"\1", text)
    text = _URL.sub("", text)
    text = _INLINE_CODE.sub("", text)
    text = _BULLET.sub("", text)
    text = _HEADING.sub("", text)
    text = _EMPHASIS.sub("", text)
    text = _EMOJI.sub("", text)
    text = _LEFTOVER_MARKS.sub(" ", text)
    text = _SPACES.sub(" ", text).strip()
    text = _SPACE_BEFORE_MARK.sub(r"\1", text)
    return text if re.search(r"\w", text) else ""


class ClauseSplitter:
    """Accumulates streamed text and hands out speakable clauses.

    A sentence end or a line break always closes a clause. A comma, colon, semicolon or dash closes
    one once it holds enough words: `first_min_words` for the first clause, so the voice starts
    early, `min_words` later, so the phrasing stays natural. Text with no punctuation at all is cut
    at `max_words`. The first clause may also end before a phrase-opening word ("is", "because",
    "with", ...) once it has `first_phrase_words` words and `first_phrase_chars` characters: a
    cut with no punctuation is ours to place, so the caller can ask for a first clause long enough
    to last until the next one is spoken. Fenced code is dropped whole.
    """

    def __init__(
        self,
        first_min_words: int = 3,
        min_words: int = 6,
        max_words: int = 25,
        first_phrase_words: int = 3,
        first_phrase_chars: int = 0,
    ) -> None:
        self.first_min_words = first_min_words
        self.first_phrase_words = first_phrase_words
        self.first_phrase_chars = first_phrase_chars
        self.min_words = min_words
        self.max_words = max_words
        self._raw = ""  # text not yet checked for code fences
        self._buf = ""  # visible text not yet released
        self._in_code = False
        self._emitted = 0

    def push(self, delta: str) -> list[str]:
        self._raw += delta
        self._strip_code()
        out = []
        while (clause := self._next_clause()) is not None:
            out += self._release(clause)
        return out

    def _release(self, clause: str) -> list[str]:
        """The clause cleaned for speaking; nothing if nothing in it can be spoken."""
        text = speakable(clause)
        if not text:
            return []
        self._emitted += 1
        return [text]

    @property
    def pending_text(self) -> str:
        """Text received and not yet released as a clause (code aside)."""
        return self._buf

    def cut(self, min_words: int = 3) -> list[str]:
        """Release what is pending now, before its punctuation arrives: the voice is about to run
        dry. Cuts before the last phrase-opening word that leaves `min_words` words, else after the
        last whole word (the piece after the last space may be half a word). Nothing if fewer
        than `min_words` whole words are pending."""
        words = list(_WHOLE_WORD.finditer(self._buf))
        if len(words) < min_words:
            return []
        cut = words[-1].end()
        phrase = _phrase_starts(self._buf[:cut], min_words)
        if phrase:
            cut = phrase[-1]
        head, self._buf = self._buf[:cut], self._buf[cut:].lstrip()
        return self._release(head)

    def flush(self) -> list[str]:
        if not self._in_code:
            self._buf += self._raw
        rest = self._buf
        self._raw = self._buf = ""
        self._in_code = False
        text = speakable(rest)
        return [text] if text else []

    def _strip_code(self) -> None:
        while True:
            fence = self._raw.find(_FENCE)
            if self._in_code:
                if fence < 0:
                    self._raw = self._raw[-(len(_FENCE) - 1) :]  # may hold half a closing fence
                    return
                self._raw = self._raw[fence + len(_FENCE) :]
                self._in_code = False
            elif fence >= 0:
                self._buf += self._raw[:fence] + "\n"
                self._raw = self._raw[fence + len(_FENCE) :]
                self._in_code = True
            else:
                keep = len(self._raw) - len(self._raw.rstrip("`"))  # a fence may be arriving
                self._buf += self._raw[: len(self._raw) - keep]
                self._raw = self._raw[len(self._raw) - keep :]
                return

    def _next_clause(self) -> str | None:
        need = self.first_min_words if self._emitted == 0 else self.min_words
        cuts = [m.end() for m in _SENTENCE_END.finditer(self._buf)][:1]
        cuts += [m.end() for m in _LINE_BREAK.finditer(self._buf)][:1]
        cuts += [m.end() for m in _CLAUSE_END.finditer(self._buf) if len(self._buf[: m.end()].split()) >= need][:1]
        if not cuts and self._emitted == 0:
            starts = _phrase_starts(self._buf, self.first_phrase_words)
            cuts = [p for p in starts if len(self._buf[:p].strip()) >= self.first_phrase_chars][:1]
        if not cuts:
            words = list(_WHOLE_WORD.finditer(self._buf))
            if len(words) >= self.max_words:
                cuts = [words[self.max_words - 1].end()]
        if not cuts:
            return None
        cut = min(cuts)
        head, self._buf = self._buf[:cut], self._buf[cut:]
        return head
