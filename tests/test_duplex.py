"""Listening while speaking, in the simulated room with the echo canceller: barge-in, echo that
must not interrupt, short sounds that must not interrupt (but may pause it), and a turn reopened
after a long pause.
Real voices from the packaged TTS on both sides, real models, real time."""

from core.audio.echo import EchoCanceller
from core.audio.playback import PlaybackQueue
from core.audio.room import RoomConfig
from core.audio.format import FRAME
from core.audio.simulated import SimulatedRoomLoop, VoiceTrack
from core.events import ReplyFinished
from core.session import Session
from core.turns import TurnConfig
import pytest

pytestmark = pytest.mark.models  # loads the real models (see the marker in pyproject.toml)

DEVICE_RATE = 48000


class Conversation:
    """A session in a simulated laptop room; the test places the user's voice on the track."""

    def __init__(self, stack, room=RoomConfig(delay_ms=60, rt60_s=0.3, echo_gain_db=-6.0), config=TurnConfig()):
        engine, vad = stack
        vad.reset()
        self.playback = PlaybackQueue(DEVICE_RATE)
        self.loop = SimulatedRoomLoop(self.playback, room, EchoCanceller())
        self.finished: list[ReplyFinished] = []
        self.session = Session(engine, vad, self.playback, config, on_event=self._on_event, duplex=True)
        self.track = VoiceTrack()
        self.tick = 0

    def _on_event(self, event):
        if isinstance(event, ReplyFinished):
            self.finished.append(event)

    def run(self, until, seconds, on_tick=None):
        def tick(t):
            self.tick = t
            if on_tick:
                on_tick(t)

        self.loop.run(self.session.feed, self.track, until, seconds, on_tick=tick)

    def say_now(self, audio):
        at = (self.tick + 1) * FRAME
        self.track.add(audio, at)
        return at

    def played_16k_index(self, sample: int) -> int:
        return sample * DEVICE_RATE // 16000


def test_barge_in_silences_the_reply_and_answers_the_new_turn(stack, speak):
    c = Conversation(stack)
    c.track.add(speak("Tell me a long story about a fox who wanted to fly."), 0)
    onset = {}

    def interrupt(tick):
        if "at" not in onset and c.playback.first_sample_at is not None and c.playback.played > DEVICE_RATE * 1.5:
            # Unbroken speech from the start; interruptions that open with a short word and a
            # pause ("Wait, stop. ...") are in bench duplex, where they make the long tail.
            onset["at"] = c.say_now(speak("Sorry to interrupt you there, but what is two plus two?", lead_ms=0))

    c.run(lambda: len(c.finished) >= 2, 90, on_tick=interrupt)
    assert [f.reason for f in c.finished] == ["interrupted", "complete"], c.finished
    played = c.loop.played_audio()
    after = played[c.played_16k_index(onset["at"]) :]
    silent_from = next(i for i in range(0, len(after), 480) if not after[i : i + 480 * 5].any())
    latency_ms = silent_from / DEVICE_RATE * 1000
    # The figures are in bench duplex; here: prompt, not a multi-second wait for a pause.
    assert latency_ms < 1500, f"output went silent {latency_ms:.0f} ms after the user started"
    history = c.session.history
    assert history[1].role == "assistant" and history[1].interrupted
    assert "two" in history[2].text.lower() or "2" in history[2].text
    assert history[3].role == "assistant" and not history[3].interrupted


def test_its_own_echo_does_not_interrupt_it(stack, speak):
    c = Conversation(stack, room=RoomConfig(delay_ms=120, rt60_s=0.4, echo_gain_db=-3.0))
    c.track.add(speak("Tell me a long story about a dragon who learns to bake bread."), 0)
    c.run(lambda: len(c.finished) >= 1, 90)
    assert [f.reason for f in c.finished] == ["complete"]
    assert len(c.finished[0].text.split()) > 15  # a long reply played out in full
    assert c.session.interruptions == 0


def test_a_short_sound_does_not_interrupt_it(stack, speak):
    c = Conversation(stack)
    c.track.add(speak("Tell me a long story about a cat who wanted to sing."), 0)
    blip = speak("Yes.", lead_ms=0)[: int(16000 * 0.15)]  # 150 ms: a backchannel, not a turn
    placed = {}

    def backchannel(tick):
        if "at" not in placed and c.playback.played > DEVICE_RATE * 1.5:  # past the reopening second
            placed["at"] = c.say_now(blip)

    c.run(lambda: len(c.finished) >= 1, 90, on_tick=backchannel)
    assert "at" in placed
    assert [f.reason for f in c.finished] == ["complete"]
    # It may pause the reply for a moment (a hold), never for good, and never drop any of it.
    assert c.session.holds == c.session.released and c.session.interruptions == 0
    assert c.playback.played == c.playback.written


def test_a_word_pauses_the_reply_and_it_goes_on_where_it_stopped(stack, speak):
    # A 100 ms syllable and the hold at one voiced window (32 ms), not the default 160: voice
    # activity trails a sound by 0-150 ms and, through the echo canceller, may find only one or
    # two windows of the syllable sure (with 64 ms it was missed once in a full CI run); it stays
    # far from the 300 ms that would take over (a 150 ms one reached 288 ms here). The default's
    # rates are in bench duplex.
    c = Conversation(stack, config=TurnConfig(barge_in_hold_ms=32))
    c.track.add(speak("Tell me a long story about a cat who wanted to sing."), 0)
    word = speak("Really?", lead_ms=0)[: int(16000 * 0.10)]
    placed = {}

    def remark(tick):
        if "at" not in placed and c.playback.played > DEVICE_RATE * 1.5:  # past the reopening second
            placed["at"] = c.say_now(word)

    c.run(lambda: len(c.finished) >= 1, 90, on_tick=remark)
    assert [f.reason for f in c.finished] == ["complete"]
    assert "at" in placed, c.finished  # the reply lasted past the moment the word is said
    assert c.session.holds >= 1 and c.session.released == c.session.holds
    assert c.playback.played == c.playback.written  # every sample played, none twice
    played = c.loop.played_audio()
    at = c.played_16k_index(placed["at"])
    block = DEVICE_RATE // 100
    quiet = [i for i in range(at, at + DEVICE_RATE, block) if not played[i : i + block].any()]
    assert len(quiet) >= 10, "the reply should pause for at least 100 ms while the user talks"


def test_speech_soon_after_the_turn_ended_continues_that_turn(stack, speak):
    # 700 ms of silence ends the turn (500 ms); speech 200 ms later reopens it. The first half asks
    # for more than a word, so its reply is still playing when the turn goes on (a reply already
    # spoken in full cannot be taken back, and then the rest is a new turn).
    c = Conversation(stack)
    first = speak("Tell me two facts about the capital city")
    c.track.add(first, 0)
    c.track.add(speak("of Spain?", lead_ms=0), len(first) + int(16000 * 0.7))
    c.run(lambda: any(f.reason == "complete" for f in c.finished), 60)
    complete = [f for f in c.finished if f.reason == "complete"]
    assert len(complete) == 1 and "madrid" in complete[0].text.lower(), (c.finished, c.session.history)
    user_lines = [m.text for m in c.session.history if m.role == "user"]
    assert len(user_lines) == 1 and "spain" in user_lines[0].lower()


def test_push_to_talk_marks_the_turn_and_interrupts_the_reply(stack, speak):
    from core.events import Mode

    c = Conversation(stack)
    c.session.set_mode(Mode.PUSH_TO_TALK)
    question = speak("What is the capital of France?")
    events = {}

    def keys(tick):
        ms = tick * 10
        if ms == 200:
            c.session.press()
            c.track.add(question, (tick + 1) * FRAME)
            events["press"] = tick
        if (
            "press" in events
            and "release" not in events
            and (tick - events["press"] - 1) * FRAME >= len(question) + 2400
        ):
            c.session.release()  # no waiting for silence: the key ends the turn
            events["release"] = tick

    # Nothing but silence after the question: with the key up, no turn may start by itself.
    c.track.add(speak("And this is not a question for you.", lead_ms=0), 16000 * 8)
    c.run(lambda: len(c.finished) >= 1 and c.tick > 1200, 60, on_tick=keys)
    assert [f.reason for f in c.finished] == ["complete"]
    assert "paris" in c.finished[0].text.lower()
    user_lines = [m.text for m in c.session.history if m.role == "user"]
    assert len(user_lines) == 1 and "france" in user_lines[0].lower()
    latency = c.session.latencies[0]
    assert latency.end_of_turn < 400  # released 150 ms after the speech, not after 500 ms of silence
