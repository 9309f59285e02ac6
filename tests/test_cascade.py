"""The streaming cascade engine on the real packaged models."""

import threading
import time
from dataclasses import replace

import numpy as np
import pytest

from models.engine import (
    CancelToken,
    Message,
    PromptTokens,
    ReplyAudio,
    ReplyDone,
    ReplyText,
    StageTime,
    Style,
    TranscriptFinal,
    UserTurn,
)
from tests.conftest import word_error

pytestmark = pytest.mark.models  # loads the real models (see the marker in pyproject.toml)


@pytest.fixture()
def engine(stack):
    engine, _ = stack
    engine.chat.config = replace(engine.chat.config, seed=7)
    return engine


def timed_events(engine, turn, style=Style()):
    t0 = time.perf_counter()
    return [(time.perf_counter() - t0, e) for e in engine.respond(turn, style, CancelToken())]


def test_speech_recognition_of_a_spoken_question(engine, speak):
    question = "What is the capital of France?"
    assert word_error(question, engine.asr.transcribe(speak(question))) <= 0.1


def test_the_faster_recognizer_hears_a_spoken_question(speak):
    """Whisper tiny.en, the recognizer to choose in the settings, from its model pack."""
    from core.engines import threads
    from models.cascade.asr import WhisperAsr
    from models.registry import ModelStore

    asr = WhisperAsr(ModelStore().ensure_role("whisper-tiny-en", "asr"), threads=threads())
    question = "What is the capital of France?"
    assert word_error(question, asr.transcribe(speak(question))) <= 0.2
    assert asr.transcribe(speak(question) * 0.0) == ""


def test_audio_starts_while_the_model_is_still_writing(engine):
    events = timed_events(engine, UserTurn(text="Tell me a long story about a dragon who learns to bake bread."))
    kinds = [type(e).__name__ for _, e in events if not isinstance(e, StageTime)]
    assert kinds[0] == "TranscriptFinal" and kinds[-1] == "ReplyDone"
    assert events[-1][1].reason == "complete"
    first_audio = next(t for t, e in events if isinstance(e, ReplyAudio))
    llm_done = next(t for t, e in events if isinstance(e, StageTime) and e.stage == "llm_total")
    assert first_audio < llm_done, "the voice waited for the whole reply"
    texts = [e.delta for _, e in events if isinstance(e, ReplyText)]
    assert len(texts) >= 2, "the reply was not split into clauses"


def test_cancel_ends_the_reply_at_once_and_the_next_turn_works(engine):
    turn = UserTurn(text="Tell me a long story about a dragon who learns to bake bread.")
    token = CancelToken()
    events = engine.respond(turn, Style(), token)
    for event in events:
        if isinstance(event, ReplyAudio):
            break
    token.cancel()
    # The iterator ends at once, with nothing more of the reply (how fast sound stops is bench duplex's).
    assert list(events) == [ReplyDone("cancelled")]
    with engine.lease:  # taken once both workers have let go: within a token or a clause
        pass
    assert not [t for t in threading.enumerate() if t.name.startswith("cascade-")], "a worker outlived its reply"

    after = [e for _, e in timed_events(engine, UserTurn(text="What is the capital of France?"))]
    assert isinstance(after[-1], ReplyDone) and after[-1].reason == "complete"
    assert any(isinstance(e, ReplyAudio) for e in after)
    assert "paris" in " ".join(e.delta for e in after if isinstance(e, ReplyText)).lower()


def test_cancel_from_another_thread_during_recognition(engine, speak):
    audio = speak("Tell me something interesting about the ocean and the animals living in it.")
    token = CancelToken()
    threading.Timer(0.05, token.cancel).start()
    events = list(engine.respond(UserTurn(audio=audio), Style(), token))
    assert isinstance(events[-1], ReplyDone) and events[-1].reason == "cancelled"
    assert not any(isinstance(e, ReplyAudio) for e in events)


def test_silence_gives_an_empty_reply(engine):
    import numpy as np

    events = list(engine.respond(UserTurn(audio=np.zeros(16000, np.float32)), Style(), CancelToken()))
    assert [e.text for e in events if isinstance(e, TranscriptFinal)] == [""]
    assert events[-1] == ReplyDone("empty")
    assert not any(isinstance(e, (ReplyText, ReplyAudio)) for e in events)


def test_history_is_used_and_kept_within_budget(engine):

    history = tuple(Message("user" if i % 2 == 0 else "assistant", f"Filler line number {i} " * 20) for i in range(60))
    messages = engine.chat.build_messages(history, "And my name?")
    total = sum(engine.chat.count_tokens(m["content"]) for m in messages)
    assert total <= engine.chat.config.history_budget_tokens
    assert messages[0]["role"] == "system" and messages[1]["role"] == "user"
    assert messages[-1] == {"role": "user", "content": "And my name?"}
    assert 1 < len(messages) - 2 < 60  # some, not all, of the history
    remembered = engine.chat.build_messages(
        (Message("user", "My name is Alice."), Message("assistant", "Nice to meet you, Alice.")), "What is my name?"
    )
    reply = "".join(
        e.delta
        for e in engine.respond(
            UserTurn(
                text="What is my name?",
                history=(Message("user", "My name is Alice."), Message("assistant", "Nice to meet you, Alice.")),
            ),
            Style(),
            CancelToken(),
        )
        if isinstance(e, ReplyText)
    )
    assert len(remembered) == 4
    assert "alice" in reply.lower()


def test_the_history_is_dropped_a_page_at_a_time(engine):
    """As the conversation grows past the budget the first kept message moves in steps of a page,
    so most turns' prompts begin exactly as the previous turn's did."""
    from models.cascade.chat import HISTORY_PAGE

    history = [
        Message("user" if i % 2 == 0 else "assistant", f"Line {i}: " + "words to fill the budget " * 6)
        for i in range(80)
    ]
    firsts = []
    for n in range(20, 80, 2):
        messages = engine.chat.build_messages(tuple(history[:n]), "Next?")
        total = sum(engine.chat.count_tokens(m["content"]) + 8 for m in messages)
        assert total <= engine.chat.config.history_budget_tokens + 8
        firsts.append(messages[1]["content"])
    starts = [int(text.split(":")[0].split()[1]) for text in firsts]
    assert all(s % HISTORY_PAGE == 0 for s in starts)
    assert len(set(starts)) > 1  # the window did move ...
    unchanged = sum(a == b for a, b in zip(starts, starts[1:]))
    assert unchanged >= 0.6 * (len(starts) - 1)  # ... but in steps, not every turn


def test_the_next_turn_reads_only_its_own_tokens_from_a_warm_cache(engine):
    """The system prompt and the history stay in llama.cpp's cache: the next turn evaluates only
    the new question (and the previous reply's closing), also after a reply that was prepared at
    a pause and thrown away."""

    def prompt_of(turn):
        events = list(engine.respond(turn, Style(), CancelToken()))
        text = "".join(e.delta for e in events if isinstance(e, ReplyText))
        return text, [e for e in events if isinstance(e, PromptTokens)][0]

    history = (
        Message("user", "My name is Alice and I live in Paris."),
        Message("assistant", "Nice to meet you, Alice."),
    )
    first, use = prompt_of(UserTurn(text="What should I see in my city this weekend?", history=history))
    assert use.cached + use.new > 60
    history += (Message("user", "What should I see in my city this weekend?"), Message("assistant", first))
    # A reply prepared at a pause, cut off after its first words, then the whole turn.
    token = CancelToken()
    for event in engine.respond(UserTurn(text="And what about", history=history), Style(), token):
        if isinstance(event, ReplyText):
            token.cancel()
    _, use = prompt_of(UserTurn(text="And what about the food there?", history=history))
    question = engine.chat.count_tokens("And what about the food there?")
    assert use.new <= question + 12, use  # the question, the template's few tokens around it
    assert use.cached >= engine.chat.count_tokens(first)  # the history stayed


def _long_history(n: int):
    return tuple(
        Message("user" if i % 2 == 0 else "assistant", f"Line {i}: " + "words to fill the budget " * 6)
        for i in range(n)
    )


def _prompt_use(engine, history, question, style=Style()):
    """The prompt's use of the cache for this turn (the reply is cancelled at its first token)."""

    token = CancelToken()
    for event in engine.respond(UserTurn(text=question, history=history), style, token):
        if isinstance(event, PromptTokens):
            token.cancel()
            with engine.lease:  # its workers have let go of the model
                return event


TOPICS = 3 * [
    "the weather in Lisbon",
    "how to bake bread",
    "the history of jazz",
    "learning Spanish",
    "my cat Tom",
    "running a marathon",
    "the moon landing",
    "growing tomatoes",
    "chess openings",
    "the best pizza",
    "saving money",
    "sleep habits",
    "electric cars",
    "the ocean",
    "ancient Rome",
]


def _chat_history(name_at: int):
    history = []
    for i, topic in enumerate(TOPICS):
        said = f"Tell me something about {topic}." + (
            " By the way, my name is Alice and I am a nurse." if i == name_at else ""
        )
        history += [
            Message("user", said),
            Message("assistant", f"Sure. A short thought about {topic}: it is a rich subject with a long story."),
        ]
    return tuple(history)


def test_a_dropped_history_page_is_moved_in_the_cache_not_evaluated_again(engine):
    """When the oldest page of the history is dropped the prompt changes right after the system
    text; the rest of the history is still in the cache, moved back over the gap, and the model
    reads it as before (it still knows what the user said in it)."""
    question = "What is my name and what do I do?"
    history = _chat_history(name_at=12)

    def start(n):
        return engine.chat.build_messages(history[:n], question)[1]["content"]

    n = 16  # the first history long enough that two more messages move its start by a page
    while start(n) == start(n + 2):
        n += 2
    assert n + 2 > 2 * 12 + 1, "the name must be in what is kept"
    _prompt_use(engine, history[:n], question)
    events = list(engine.respond(UserTurn(text=question, history=history[: n + 2]), Style(), CancelToken()))
    use = next(e for e in events if isinstance(e, PromptTokens))
    reply = "".join(e.delta for e in events if isinstance(e, ReplyText))
    added = sum(engine.chat.count_tokens(m.text) + 8 for m in history[n : n + 2])
    assert use.new <= added + engine.chat.count_tokens(question) + 16, use
    assert use.cached > 5 * use.new, use
    assert "alice" in reply.lower(), reply


def test_a_new_persona_is_evaluated_before_the_question_comes(engine):
    """A new persona (or emotion) changes the system text, so the whole history after it is new
    to the cache; primed while the user speaks, the reply waits only for its question. (The
    emotion's instruction stays in the system text: placed as a system message just before the
    question, the packaged 0.5B model followed it less.)"""
    history, question = _long_history(12), "And what do you think?"
    fox, owl = Style(persona="You are Fox, quick and playful."), Style(persona="You are Owl, calm and wise.")
    _prompt_use(engine, history, question, fox)
    unprimed = _prompt_use(engine, history, question, owl)
    _prompt_use(engine, history, question, fox)
    engine.prime(history, owl)
    assert engine.priming is not None and engine.priming.done.wait(120)
    primed = _prompt_use(engine, history, question, owl)
    own = engine.chat.count_tokens(question)
    assert unprimed.new > 300, unprimed
    assert primed.new <= own + 12 and primed.cached + primed.new == unprimed.cached + unprimed.new, (primed, unprimed)
    # Without a persona the prompt's style text follows the cache's persona: it is evaluated
    # afresh, never moved over the old persona (the reply would carry its traces).
    plain = _prompt_use(engine, history, question)
    assert plain.cached < engine.chat.count_tokens(owl.persona), plain


def test_a_reply_thrown_away_at_a_pause_leaves_its_question_in_the_cache(engine):
    """A reply prepared at a pause evaluates the words so far; the user goes on, it is thrown
    away, and the session primes the engine (no reply is running). The prefix is already there,
    so priming leaves the cache alone, and the next pause's reply, the same words and more, finds
    them all in the cache: on a long turn that is most of its prompt."""
    history = _long_history(4)
    said = "So I was thinking about the trip we planned for the spring, the one to the mountains,"
    more = said + " and whether we should take the train instead of driving all the way up there."
    first = _prompt_use(engine, history, said)
    engine.prime(history, Style())
    assert engine.priming is not None and engine.priming.done.wait(120)
    second = _prompt_use(engine, history, more)
    grown = engine.chat.count_tokens(more) - engine.chat.count_tokens(said)
    assert second.cached >= first.cached + first.new - 12, (first, second)  # the first question's words
    assert second.new <= grown + 12, (second, grown)


def test_words_heard_at_a_pause_are_evaluated_while_the_user_goes_on(engine, speak, monkeypatch):
    """A reply prepared at a pause is mostly thrown away while it is still recognising (the user
    went on before the chat model started). The words it recognised are evaluated by the priming
    that follows, so the next reply, the same words and more, evaluates only what was added."""
    history = _long_history(4)
    token = CancelToken()
    recognise = engine.asr.transcribe_turn
    heard = []

    def recognised_then_the_user_went_on(audio, cancelled=None):
        heard.append(recognise(audio, cancelled))
        token.cancel()
        return heard[-1]

    monkeypatch.setattr(engine.asr, "transcribe_turn", recognised_then_the_user_went_on)
    said = "So I was thinking about the trip we planned for the spring, the one up in the mountains"
    audio = speak(said)
    events = list(engine.respond(UserTurn(audio=audio, history=history), Style(), token))
    assert not any(isinstance(e, PromptTokens) for e in events)  # the chat model never started
    monkeypatch.undo()
    assert word_error(said, heard[0]) <= 0.2, heard
    engine.prime(history, Style())
    assert engine.priming is not None and engine.priming.done.wait(120)
    more = heard[0].rstrip(".?!,") + ", and whether we should take the train instead of driving all the way."
    use = _prompt_use(engine, history, more)
    grown = engine.chat.count_tokens(more) - engine.chat.count_tokens(heard[0])
    assert engine.chat.count_tokens(heard[0]) >= 15
    assert use.new <= grown + 12, (use, grown)  # the heard words were in the cache


def test_priming_stopped_midway_keeps_what_it_evaluated(engine):
    from models.cascade.chat import PRIME_EVAL_STEP

    history = _long_history(10)
    token = CancelToken()
    checks = []

    class StopsAfterThreeSteps:
        @property
        def cancelled(self):
            checks.append(1)
            return len(checks) > 3

    with engine.lease:
        list(engine.chat.stream(engine.chat.build_messages((), "Hi."), CancelToken(), max_tokens=1))
        engine.chat.prime(history, StopsAfterThreeSteps())
        evaluated = engine.chat._llm.n_tokens
        whole = engine.chat.prime(history, token)
    assert whole is not None
    assert whole.cached == evaluated  # the next prompt found the stopped one's tokens in the cache
    assert evaluated <= whole.cached + whole.new - 2 * PRIME_EVAL_STEP  # it did stop early


class SteadyWriter:
    """Stands in for the chat model only: writes a fixed reply at a fixed pace, so the test can
    hold the engine's pacing to account. Voice and recognition stay the real packaged ones."""

    def __init__(self, text: str, words_per_second: float) -> None:
        self.text, self.interval = text, 1.0 / words_per_second

    prompt_use = None  # no prompt cache to report

    def build_messages(self, history, question, persona=None, instruction=None):
        return []

    def stream(self, messages, cancel, max_tokens=None):
        for word in self.text.split(" "):
            time.sleep(self.interval)
            if cancel.cancelled:
                return
            yield word + " "


@pytest.mark.parametrize("styling_seconds_per_second", [0.0, 0.3])
def test_a_long_unpunctuated_sentence_is_cut_before_the_voice_runs_dry(stack, styling_seconds_per_second):
    """The caller may take a while over each piece (styling it, as voice matching does at ~0.17 s
    per second of speech): the audio counts from when the caller has it, not from when it was made."""
    from models.cascade.engine import CascadeEngine

    real, _ = stack
    reply = (
        "Well, that is a good question, and the moon sits about three hundred eighty four "
        "thousand kilometres away from the earth which light crosses in a little more than one "
        "second every single time it makes the trip there"
    )
    engine = CascadeEngine(real.asr, SteadyWriter(reply, words_per_second=5.0), real.tts)
    texts = []
    for event in engine.respond(UserTurn(text="How far is the moon?"), Style(), CancelToken()):
        if isinstance(event, ReplyText):
            texts.append(event.delta.strip())
        if isinstance(event, ReplyAudio):
            time.sleep(styling_seconds_per_second * len(event.samples) / event.rate)
    assert " ".join(texts) == reply
    # Without pacing: the first clause, then 25 words 5 s later. Whether the cuts came in time to
    # leave no gap depends on the machine's load: bench duplex counts underruns in a long conversation.
    assert len(texts) >= 3, texts
    # Cut at whole phrases, never a word or two. The last piece is what the writer added after the
    # last cut before it stopped: when a cut falls just before the sentence's last word, that word
    # is spoken alone (the clock decides where the cuts fall).
    assert all(len(t.split()) >= 3 for t in texts[1:-1]), texts


def test_a_growing_turn_is_recognised_as_it_grows(engine):
    """A long turn recognised at every pause, as the session prepares replies while the user
    speaks: by the end only the last few seconds are left to decode, and the words are as good as
    one decode of the whole turn."""
    import numpy as np

    from bench.hearing import pause_points
    from bench.natural import SCRIPTS, SPEAKERS, Kind, natural_turn
    from core.audio.vad import load_vad
    from models.cascade.asr import MIN_REST_S, RATE

    turn = natural_turn(SCRIPTS[Kind.LONG][0], SPEAKERS[0], np.random.default_rng(2))
    asr = engine.asr
    whole = asr.transcribe(turn.audio)
    points = pause_points(load_vad(), turn.audio)
    assert len(points) > 5
    for end in points[:-1]:
        asr.transcribe_turn(turn.audio[:end])
    start, _ = asr._heard_prefix(turn.audio)
    assert len(turn.audio) - start < 2 * MIN_REST_S * RATE, "most of the turn was left for the end"
    growing = asr.transcribe_turn(turn.audio)
    assert word_error(turn.text, growing) <= word_error(turn.text, whole) + 0.03, (growing, whole)
    # The next turn starts afresh: nothing of the last one is prepended.
    question = natural_turn(SCRIPTS[Kind.SHORT][0], SPEAKERS[1], np.random.default_rng(3))
    heard = asr.transcribe_turn(question.audio).lower()
    assert "timer" in heard and "lisbon" not in heard, heard
    assert asr._heard_prefix(turn.audio) == (0, "") and not asr._cuts


class GatedWriter:
    """Stands in for the chat model: writes the first sentence at once and the rest only when
    the test opens the gate."""

    prompt_use = None

    def __init__(self, first: str, rest: str) -> None:
        self.first, self.rest, self.gate = first, rest, threading.Event()

    def build_messages(self, history, question, persona=None, instruction=None):
        return []

    def stream(self, messages, cancel, max_tokens=None):
        yield self.first
        while not self.gate.wait(0.01):
            if cancel.cancelled:
                return
        yield self.rest


class InstantVoice:
    """Stands in for the voice: 60 ms of sound per character, made at once; notes what it made."""

    rate = 16000

    def __init__(self) -> None:
        self.made: list[str] = []

    def synthesize(self, text, speed=1.0, expressiveness=1.0):
        self.made.append(text)
        yield np.full(int(0.06 * self.rate * len(text)), 0.1, np.float32)


def gated_engine(next_clause_s: float):
    from models.cascade.engine import CascadeEngine

    writer = GatedWriter("Yes. ", "The moon is about four hundred thousand kilometres away.")
    engine = CascadeEngine(None, writer, InstantVoice())
    engine._pace.next_clause_s = next_clause_s
    return engine, writer


def test_a_short_first_clause_waits_for_the_next_one_when_that_is_due_soon():
    """The next clause usually comes 10 s after the first (learned): a 0.24 s "Yes." alone would
    leave a gap, so its sound is held until the next clause is made (here 0.2 s after the first
    clause is shown), and then everything goes out in order, the text never ahead of the sound."""
    engine, writer = gated_engine(next_clause_s=10.0)
    engine._pace.HOLD_MAX_S = 30.0
    order = []
    for event in engine.respond(UserTurn(text="Is the moon far?"), Style(), CancelToken()):
        if isinstance(event, ReplyText):
            order.append(("text", event.delta.strip()))
            threading.Timer(0.2, writer.gate.set).start()
        elif isinstance(event, ReplyAudio):
            if not any(kind == "audio" for kind, _ in order):
                assert len(engine.tts.made) == 2, "the first sound went out before the next clause was made"
            order.append(("audio", round(len(event.samples) / event.rate, 2)))
    assert [k for k, _ in order] == ["text", "audio", "text", "audio"], order
    assert order[1][1] == round(0.06 * len("Yes."), 2)


def test_a_held_first_clause_goes_out_when_its_hold_ends():
    """The next clause is late (the gate stays shut): the first clause is held at most by what
    it lacks of the expected time, then plays; nothing waits for the late writer."""
    engine, writer = gated_engine(next_clause_s=0.3)
    events = engine.respond(UserTurn(text="Is the moon far?"), Style(), CancelToken())
    before = []
    for event in events:
        if isinstance(event, ReplyAudio):
            first_audio = event
            break
        before.append(event)
    assert not writer.gate.is_set()  # it came out by the hold's end, the second clause unwritten
    assert len(first_audio.samples) == int(0.06 * 16000 * len("Yes."))
    # The time held is reported with the turn's stages: latency spent on purpose, and measured.
    held = [e.seconds for e in before if isinstance(e, StageTime) and e.stage == "first_clause_hold"]
    expected = 0.3 + engine._pace.MARGIN_S - 0.06 * len("Yes.")
    assert len(held) == 1 and expected - 0.01 <= held[0] < expected + 0.5, held
    writer.gate.set()
    rest = list(events)
    assert isinstance(rest[-1], ReplyDone) and rest[-1].reason == "complete"


def test_the_hold_is_what_the_first_clause_lacks_and_never_more_than_the_cap():
    from models.cascade.engine import _Pace

    pace = _Pace()
    pace.next_clause_s = 0.8
    assert pace.hold_for(2.0) == 0.0  # a long first clause lasts until the next one anyway
    assert pace.hold_for(0.5) == pytest.approx(0.8 + pace.MARGIN_S - 0.5)
    pace.next_clause_s = 5.0
    assert pace.hold_for(0.5) == pace.HOLD_MAX_S
    # Learned as a high quantile of the latest times: one slow second clause in twelve is let go,
    # two are planned for; the cautious start stays until three were seen.
    pace = _Pace()
    pace.next_made(0.4)
    pace.next_made(0.4)
    assert pace.next_clause_s == 1.0
    for _ in range(pace.NEXT_KEPT - 3):
        pace.next_made(0.4)
    pace.next_made(2.0)
    assert pace.next_clause_s == pytest.approx(0.4)
    pace.next_made(2.0)
    assert pace.next_clause_s > 1.5


def test_a_first_clause_cut_at_a_phrase_word_is_asked_to_last_what_the_hold_cannot_cover():
    from models.cascade.engine import _Pace

    pace = _Pace()
    pace.audio_seconds_per_char = 0.05
    pace.next_clause_s = 0.3  # the hold alone covers the wait: any length will do
    assert pace.first_phrase_chars() == 0
    pace.next_clause_s = 1.5  # 1.5 + margin - hold = 1.15 s of speech, 23 characters
    assert pace.first_phrase_chars() == 23
    pace.audio_seconds_per_char = 0.025  # spoken twice as fast: twice the characters
    assert pace.first_phrase_chars() == 46


def test_a_long_clause_hands_back_the_voices_memory_once_it_is_voiced(engine):
    """onnxruntime keeps the memory of its largest run: without a bound, one long clause would
    hold ~5 MB a word for the rest of the session. The arena is grown at load to a usual long
    clause's size; a longer clause's memory is handed back after it."""
    import ctypes

    from models.cascade.tts import ARENA_KEPT_IDS, ARENA_TEXT

    def held_mb():
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    tts = engine.tts
    assert 0.9 * ARENA_KEPT_IDS <= tts.phoneme_ids(ARENA_TEXT) <= ARENA_KEPT_IDS
    long_clause = " ".join(["the quick brown fox jumps over the lazy dog and then it runs away"] * 6)
    assert tts.phoneme_ids(long_clause) > 2.5 * ARENA_KEPT_IDS
    with engine.lease:
        tts.warm()
        before = held_mb()
        audio = np.concatenate(list(tts.synthesize(long_clause)))
        after = held_mb()
        for _ in tts.synthesize("And a short one."):
            pass
        again = held_mb()
    assert len(audio) / tts.rate > 15  # the whole clause was voiced
    assert after - before < 40 and again - before < 40, (before, after, again)  # unbounded: ~+300 MB


def test_the_voice_is_entered_by_one_thread_at_a_time(engine):
    """A second thread that enters the voice while a clause is being voiced raises, whichever of
    its ways in it takes."""
    from models.engine import ConcurrentUse

    tts = engine.tts
    with engine.lease:
        voicing = tts.synthesize("First a sentence. Then another one.")
        next(voicing)  # inside the voice until the generator ends
        failures = []

        def other() -> None:
            for enter in (lambda: list(tts.synthesize("Hi.")), tts.warm, lambda: tts.phoneme_ids("Hi.")):
                try:
                    enter()
                except ConcurrentUse:
                    failures.append(enter)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(30)
        voicing.close()
        assert len(failures) == 3
        assert tts.phoneme_ids("Hi.") > 0  # free again once the clause is closed
