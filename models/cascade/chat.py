"""A chat model in GGUF on llama.cpp, streamed token by token, with history kept within a budget."""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from models.engine import Cancelled, CancelToken, Message, single_threaded, stop_if_cancelled

SPOKEN_STYLE = (
    "You are a friendly voice companion talking with someone out loud. "
    "Everything you write is spoken aloud by a speech synthesizer, so answer like a person in a "
    "conversation: short, plain spoken sentences, usually one to three. Start with a short "
    "sentence. Never use markdown, lists, headings, code, tables, links or emoji. "
    "Say numbers and symbols as words when that reads more naturally."
)


@dataclass(frozen=True)
class ChatConfig:
    n_ctx: int = 2048
    max_reply_tokens: int = 120
    history_budget_tokens: int = 1200  # system prompt + earlier turns + this question
    temperature: float = 0.6
    top_p: float = 0.9
    repeat_penalty: float = 1.1  # small models loop without it
    threads: int = 2
    gpu_layers: int = 0
    flash_attention: bool = False  # where the backend has the kernels (see models.devices)
    seed: int | None = None  # fixed for benchmarks; random in conversation


HISTORY_PAGE = 8  # earlier messages are dropped this many at a time (see build_messages)
# The history's budget leaves at least this much room for the question, so where the kept history
# starts does not depend on the length of a question (up to about 90 words): the prefix evaluated
# before the question was asked (`prime`) is then the one the question's prompt begins with.
QUESTION_RESERVE_TOKENS = 120
# Prompts are evaluated this many tokens at a time, with a look at the reply's token in between:
# llama.cpp cannot stop inside one evaluation, and a history evaluated afresh takes seconds on a
# CPU. Smaller steps stop sooner and cost throughput (on 2 cores 16 tokens take ~0.25 s, 7% slower
# than one batch; 64 take ~0.8 s): a reply's own prompt is mostly shorter than its step, and idle
# priming, which any reply interrupts, uses the short one.
REPLY_EVAL_STEP = 64
PRIME_EVAL_STEP = 16
# The fewest tokens a stretch of the cache must share with the prompt to be moved rather than
# evaluated again (see moved_stretch).
MIN_MOVED_TOKENS = 32


def shared_start(a: Sequence[int], b: Sequence[int]) -> int:
    """How many tokens `a` and `b` share from their start."""
    shared = 0
    for x, y in zip(a, b):
        if x != y:
            break
        shared += 1
    return shared


def moved_stretch(cached: Sequence[int], prompt: Sequence[int]) -> tuple[int, int, int] | None:
    """Where `prompt` is the `cached` tokens with a stretch cut out after their shared start (the
    history's oldest page dropped after the system text): (shared, gap_end, run) such that
    cached[:shared] == prompt[:shared] and cached[gap_end : gap_end + run] == prompt[shared :
    shared + run], with the longest such run of at least MIN_MOVED_TOKENS; None if there is none."""
    shared = shared_start(cached, prompt)
    if shared >= len(cached) or len(prompt) - shared < MIN_MOVED_TOKENS:
        return None
    old = np.asarray(cached, np.int64)
    want = np.asarray(prompt[shared : shared + MIN_MOVED_TOKENS], np.int64)
    if len(old) - shared - 1 < MIN_MOVED_TOKENS:
        return None
    windows = np.lib.stride_tricks.sliding_window_view(old[shared + 1 :], MIN_MOVED_TOKENS)
    best: tuple[int, int, int] | None = None
    for start in np.flatnonzero((windows == want).all(axis=1)) + shared + 1:
        run = MIN_MOVED_TOKENS
        while start + run < len(old) and shared + run < len(prompt) and old[start + run] == prompt[shared + run]:
            run += 1
        if best is None or run > best[2]:
            best = (shared, int(start), run)
    return best


@dataclass(frozen=True)
class PromptUse:
    """How a generation's prompt met llama.cpp's cache: tokens found there, tokens evaluated."""

    cached: int
    new: int


class _Formatted(Exception):
    """A dry run's prompt: the tokens the chat template and tokenizer made of the messages."""

    def __init__(self, tokens: list[int]) -> None:
        super().__init__()
        self.tokens = tokens


@functools.cache
def _llama_class() -> type:
    from llama_cpp import Llama

    class CountingLlama(Llama):
        """Llama that notes, at the first evaluation of each generation, how much of the prompt
        the cache already held (llama-cpp-python keeps the longest shared prefix)."""

        prompt_use: PromptUse | None = None
        eval_step = REPLY_EVAL_STEP
        # Tokens of the prompt's system text: a stretch is moved only when the prompt shares at
        # least these with the cache, so a new persona or emotion is never read with the old one's
        # traces (the history's dropped page, after the system text, is what moving is for).
        min_shared = 0
        stop_check: Callable[[], bool] | None = None  # asked between steps; True raises Cancelled
        dry_run = False  # generate() only reports the prompt's tokens (raises _Formatted)

        def generate(self, tokens, *args, **kwargs):
            if self.dry_run:
                raise _Formatted(list(tokens))
            self.prompt_use = None
            self._move_kept_stretch(list(tokens))
            return super().generate(tokens, *args, **kwargs)

        def _move_kept_stretch(self, tokens: list[int]) -> None:
            """When the prompt drops a stretch of what the cache holds (the oldest page of the
            history), the cache's part after that stretch is moved back over the gap instead of
            being evaluated again: llama.cpp shifts the keys' positions (as its server does with
            cache reuse). The moved tokens keep what they computed while the dropped stretch was
            still before them, an approximation the model reads as earlier context; generate()
            then finds the moved part as a shared prefix and evaluates only what follows."""
            import llama_cpp

            found = moved_stretch(self.input_ids[: self.n_tokens].tolist(), tokens)
            if found is None or found[0] < self.min_shared or not llama_cpp.llama_memory_can_shift(self._ctx.memory):
                return
            shared, gap_end, run = found
            if not self._ctx.kv_cache_seq_rm(0, shared, gap_end):
                return
            self._ctx.kv_cache_seq_shift(0, gap_end, gap_end + run, shared - gap_end)
            self._ctx.kv_cache_seq_rm(0, shared + run, -1)
            self.input_ids[shared : shared + run] = self.input_ids[gap_end : gap_end + run].copy()
            self.n_tokens = shared + run
            self._requires_eval = True  # the last logits are not the moved part's: never sample from them

        def eval(self, tokens) -> None:
            if self.prompt_use is None:
                self.prompt_use = PromptUse(cached=self.n_tokens, new=len(tokens))
            # Each step leaves the cache and the evaluated tokens in step with each other, so a
            # stop between steps keeps what was evaluated for the next prompt that begins the same.
            for i in range(0, len(tokens), self.eval_step):
                stop_if_cancelled(self.stop_check)
                super().eval(tokens[i : i + self.eval_step])

    return CountingLlama


class ChatModel:
    def __init__(self, gguf_path: Path, config: ChatConfig = ChatConfig()) -> None:
        self.config = config
        self._llm = _llama_class()(
            model_path=str(gguf_path),
            n_ctx=config.n_ctx,
            n_threads=config.threads,
            n_threads_batch=config.threads,
            n_gpu_layers=config.gpu_layers,
            flash_attn=config.flash_attention,
            verbose=False,
        )

    def warm(self, persona: str | None = None) -> None:
        """Evaluate the system prompt once so the first turn finds it in the KV cache
        (llama.cpp reuses the longest matching prefix of the previous prompt)."""
        messages = self.build_messages((), "Hello.", persona)
        for _ in self.stream(messages, CancelToken(), max_tokens=1):
            pass

    @property
    def prompt_use(self) -> PromptUse | None:
        """The last generation's use of the cache (set once its prompt was evaluated)."""
        return self._llm.prompt_use

    @single_threaded
    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def build_messages(
        self, history: tuple[Message, ...], question: str, persona: str | None = None, instruction: str | None = None
    ) -> list[dict]:
        """The chat messages for this turn: the oldest messages are dropped to fit the token budget.
        The persona says who the companion is; the instruction how to say it (an emotion).

        Messages are dropped HISTORY_PAGE at a time, counted from the start of `history`, so the
        first kept message stays the same for several turns: the prompt then begins as the last
        one did and llama.cpp evaluates only the new turn (dropping one message per turn would
        change the prompt right after the system text and re-evaluate the whole history)."""
        system_text = "\n\n".join(p for p in (persona, SPOKEN_STYLE, instruction) if p)
        question_room = max(self.count_tokens(question), QUESTION_RESERVE_TOKENS)
        budget = self.config.history_budget_tokens - self.count_tokens(system_text) - question_room
        texts = [msg.text + (" (you were interrupted here)" if msg.interrupted else "") for msg in history]
        # The newest messages that fit (only those are tokenized), then the start rounded up to a page.
        fits = len(history)
        while fits > 0:
            budget -= self.count_tokens(texts[fits - 1]) + 8  # 8: the template's tokens per message
            if budget < 0:
                break
            fits -= 1
        start = min(len(history), -(-fits // HISTORY_PAGE) * HISTORY_PAGE)
        kept = [{"role": msg.role, "content": text} for msg, text in zip(history[start:], texts[start:])]
        # A history must not start with an assistant line cut from its question.
        while kept and kept[0]["role"] != "user":
            kept.pop(0)
        return [{"role": "system", "content": system_text}, *kept, {"role": "user", "content": question}]

    @contextlib.contextmanager
    def _evaluating(self, messages: list[dict], cancel: CancelToken, step: int) -> Iterator[None]:
        """The model's settings for one generation: its token looked at every `step` prompt
        tokens, and the prompt's system text never moved over (see CountingLlama)."""
        system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
        self._llm.stop_check = lambda: cancel.cancelled
        self._llm.min_shared = self.count_tokens(system) if system else 0
        self._llm.eval_step = step
        try:
            yield
        finally:
            self._llm.stop_check = None
            self._llm.eval_step = REPLY_EVAL_STEP

    @single_threaded
    def stream(self, messages: list[dict], cancel: CancelToken, max_tokens: int | None = None) -> Iterator[str]:
        """Text pieces as the model writes them; stops within one token (or one step of its
        prompt's evaluation) of `cancel`."""
        with self._evaluating(messages, cancel, REPLY_EVAL_STEP):
            chunks = self._llm.create_chat_completion(
                messages=messages,
                stream=True,
                max_tokens=max_tokens or self.config.max_reply_tokens,
                temperature=self.config.temperature,
                top_p=self.config.top_p,
                repeat_penalty=self.config.repeat_penalty,
                seed=self.config.seed,
            )
            try:
                for chunk in chunks:
                    if cancel.cancelled:
                        return
                    delta = chunk["choices"][0]["delta"].get("content")
                    if delta:
                        yield delta
            except Cancelled:
                return
            finally:
                chunks.close()

    def _prompt_tokens(self, messages: list[dict]) -> list[int] | None:
        """The tokens a generation for `messages` evaluates (the model's own chat template and
        tokenizer), evaluating nothing."""
        self._llm.dry_run = True
        try:
            self._llm.create_chat_completion(messages=messages, max_tokens=1)
        except _Formatted as formatted:
            return formatted.tokens
        finally:
            self._llm.dry_run = False
        return None

    def _prompt_to_question_end(self, messages: list[dict]) -> list[int]:
        """The prompt's tokens up to the end of the last message's text: what the prompt of any
        question that begins with those words shares with this one (the template's tokens after
        the text, and the reply's start, differ)."""
        full = self._prompt_tokens(messages) or []
        empty = self._prompt_tokens([*messages[:-1], {**messages[-1], "content": ""}]) or []
        other = self._prompt_tokens([*messages[:-1], {**messages[-1], "content": "Why?"}]) or []
        after_text = len(empty) - shared_start(empty, other)  # the template's tokens after a message's text
        return full[: len(full) - after_text]

    @single_threaded
    def prime(
        self,
        history: tuple[Message, ...],
        cancel: CancelToken,
        persona: str | None = None,
        instruction: str | None = None,
        question_so_far: str = "",
    ) -> PromptUse | None:
        """Evaluate, ahead of the question, the prompt the next turn with this history will begin
        with (system text, the history it keeps and the words of the question heard so far), so
        that its reply waits only for the rest of the question. Stops within one short step of
        `cancel`; what was evaluated by then stays in the cache. How much of it was already
        there, and how much was evaluated (None: cancelled before anything was asked of the model)."""
        messages = self.build_messages(history, question_so_far, persona, instruction)
        wanted = self._prompt_to_question_end(messages)
        held = self._llm.input_ids[: self._llm.n_tokens].tolist()
        if wanted and shared_start(held, wanted) == len(wanted):
            # Already there, perhaps with more of the question after it (a reply prepared at a
            # pause and thrown away when the user went on): evaluating this prompt's end would
            # write over words the next reply's question, the same words and more, begins with.
            return PromptUse(cached=len(wanted), new=0)
        self._llm.prompt_use = None
        with self._evaluating(messages, cancel, PRIME_EVAL_STEP):
            try:
                self._llm.create_chat_completion(messages=messages, max_tokens=1, seed=self.config.seed)
            except Cancelled:
                pass
        return self._llm.prompt_use
