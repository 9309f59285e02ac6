"""bench chat: the candidate chat models side by side on the reply the companion needs: correct,
short, speakable, and fast to start. Quality is scored on factual questions with one right answer
and on how well the reply keeps to plain spoken sentences."""

from __future__ import annotations

import re
import time

from bench.stats import summary
from core.engines import threads
from models.cascade.chat import ChatConfig, ChatModel
from models.cascade.speakable import speakable
from models.engine import CancelToken
from models.registry import ModelStore, all_assets

FACTS = [
    ("What is the capital of France?", r"paris"),
    ("How many days are there in a leap year?", r"366|three hundred (and )?sixty[- ]six"),
    ("Which planet is closest to the sun?", r"mercury"),
    ("What is the boiling point of water in Celsius?", r"\b100\b|one hundred|a hundred"),
    ("How many legs does a spider have?", r"\b8\b|eight"),
    ("What colour do you get when you mix blue and yellow?", r"green"),
    ("Who wrote Romeo and Juliet?", r"shakespeare"),
    ("What is the largest ocean on Earth?", r"pacific"),
    ("How many minutes are there in an hour?", r"\b60\b|sixty"),
    ("What gas do plants take in from the air to make food?", r"carbon dioxide|co2"),
]
MARKUP = re.compile(r"[*#`|]|^\s*[-•]\s|^\s*\d+\.\s", re.M)


def _ask(chat: ChatModel, question: str) -> tuple[str, float, float]:
    t0 = time.perf_counter()
    first = None
    pieces = []
    for piece in chat.stream(chat.build_messages((), question), CancelToken()):
        first = first or time.perf_counter()
        pieces.append(piece)
    end = time.perf_counter()
    tokens = max(1, len(pieces) - 1)
    rate = tokens / (end - first) if first and end > first else 0.0
    return "".join(pieces), ((first or end) - t0) * 1000, rate


def run(repeats: int = 1) -> dict:
    store = ModelStore()
    models = {}
    for asset in all_assets():
        if asset.role != "llm":
            continue
        chat = ChatModel(store.ensure(asset.id) / "model.gguf", ChatConfig(threads=threads(), seed=1234))
        firsts, rates, correct, clean, words = [], [], 0, 0, []
        examples: dict[str, str] = {}
        for _ in range(max(1, repeats)):
            for question, answer in FACTS:
                text, first_ms, rate = _ask(chat, question)
                firsts.append(first_ms)
                rates.append(rate)
                correct += bool(re.search(answer, text, re.I))
                clean += not MARKUP.search(text) and speakable(text) != ""
                words.append(len(text.split()))
                examples.setdefault(question, text.strip())
        n = len(FACTS) * max(1, repeats)
        models[asset.id] = {
            "size_mb": round(sum(f.size for f in asset.files) / 1e6, 1),
            "correct": round(correct / n, 2),
            "speakable": round(clean / n, 2),
            "reply_words": summary(words),
            "first_token_ms": summary(firsts),
            "tokens_per_s": summary(rates),
            "examples": dict(list(examples.items())[:3]),
        }
        del chat
    return {"bench": "chat", "questions": len(FACTS), "repeats": repeats, "models": models}
