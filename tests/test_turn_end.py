"""The end-of-turn model (Smart Turn v3.2 from the installed pack) on real speech."""

import threading
import time

import numpy as np
import pytest

from core.audio.turn_end import load_turn_judge

pytestmark = pytest.mark.models  # loads the real models (see the marker in pyproject.toml)


@pytest.fixture(scope="module")
def judge():
    judge = load_turn_judge()
    yield judge
    judge.close()


def _verdict(judge, key, audio, timeout=30.0):
    # As the session asks: the turn up to 100 ms after its last voiced window.
    judge.ask(key, np.concatenate([audio, np.zeros(1600, np.float32)]))
    deadline = time.monotonic() + timeout
    while (p := judge.verdict(key)) is None:
        assert time.monotonic() < deadline, "the judge never answered"
        time.sleep(0.01)
    return p


@pytest.mark.parametrize(
    "text", ["What time is it?", "Set a timer for ten minutes.", "Could you tell me the weather for tomorrow in Paris?"]
)
def test_a_finished_question_is_judged_complete(judge, speak, text):
    assert _verdict(judge, hash(text), speak(text)) > 0.7


# A synthetic voice reads a fragment ("Could you tell me the weather for") with a sentence's
# falling end, and the model hears that; a filler or a connective at the end is unfinished to it.
@pytest.mark.parametrize("text", ["I was thinking about, um", "Um, what is the, uh", "And then"])
def test_a_sentence_cut_off_is_judged_unfinished(judge, speak, text):
    assert _verdict(judge, hash(text), speak(text)) < 0.3


def test_only_the_latest_question_is_answered_and_close_ends_the_thread(speak):
    judge = load_turn_judge()
    audio = speak("What time is it?")
    for key in range(5):  # asked faster than it answers: earlier questions are replaced
        judge.ask(key, np.concatenate([audio, np.zeros(1600, np.float32)]))
    assert _verdict(judge, 4, audio) > 0.7
    assert judge.verdict(0) is None
    judge.close()
    assert not [t for t in threading.enumerate() if t.name == "turn-judge" and t.is_alive() and t is judge._thread]
