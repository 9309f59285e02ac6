"""The linear echo canceller on real speech in the simulated room: it learns the echo path, keeps
the user's voice whole while both talk, and carries its state across 10 ms frames correctly; and
the echo canceller hands its output to recognition beside AEC3's."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from core.audio.echo import EchoCanceller
from core.audio.linear_echo import LinearEchoCanceller
from core.audio.measure import echo_reduction_db
from core.audio.room import RoomConfig, SimulatedRoom
from core.audio.format import FRAME, RATE

REPLY = (
    "The weather today is mild, with a light breeze from the west and a few clouds in the "
    "afternoon. Later in the evening, rain may arrive along the coast."
)
QUESTION = "Could you remind me what time the train leaves tomorrow morning?"
USER_STARTS_S = 4.0  # the canceller has heard the reply alone for a while
CONVERGED_S = 3.0


@pytest.fixture(scope="module")
def voices() -> tuple[np.ndarray, np.ndarray]:
    """The reply the app plays and the user's question, spoken by the packaged Piper voice."""
    from models.cascade.tts import PiperTts
    from models.registry import ModelStore

    tts = PiperTts(ModelStore().ensure("piper-joe-medium"))

    def speak(text: str) -> np.ndarray:
        audio = np.concatenate(list(tts.synthesize(text)))
        return soxr.resample(audio, tts.rate, RATE).astype(np.float32)

    return speak(REPLY), speak(QUESTION)


def run(
    canceller: LinearEchoCanceller, room: SimulatedRoom, far: np.ndarray, user: np.ndarray | None = None
) -> np.ndarray:
    """Plays `far` through the room frame by frame, as the audio worker would, and cleans the mic."""
    out = []
    for i in range(len(far) // FRAME):
        speaker = far[i * FRAME : (i + 1) * FRAME]
        voice = None if user is None else user[i * FRAME : (i + 1) * FRAME]
        out.append(canceller.process(room.mic_frame(speaker, voice), speaker))
    return np.concatenate(out)


def with_question(reply: np.ndarray, question: np.ndarray) -> tuple[np.ndarray, slice]:
    user = np.zeros_like(reply)
    start = int(USER_STARTS_S * RATE)
    user[start : start + len(question)] = question[: len(user) - start]
    return user, slice(start, start + len(question))


def power_db(samples: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(samples, dtype=np.float64)) + 1e-20))


@pytest.mark.parametrize("delay_ms, rt60_s", [(40, 0.3), (200, 0.25), (15, 0.5)])
def test_learns_the_echo_path_of_real_speech(voices, delay_ms: int, rt60_s: float) -> None:
    reply, _ = voices
    room = SimulatedRoom(RoomConfig(delay_ms=delay_ms, rt60_s=rt60_s, echo_gain_db=-6.0), RATE)
    residual = run(LinearEchoCanceller(), room, np.concatenate([reply, reply]))
    first, second = slice(0, len(reply)), slice(len(reply), None)
    # Within seconds of the first reply (19-27 dB over six renditions of the voice) ...
    assert echo_reduction_db(room.echo_only[first], residual[first], RATE, skip_s=CONVERGED_S) >= 15.0
    # ... and converged by the second (28-39 dB).
    assert echo_reduction_db(room.echo_only[second], residual[second], RATE, skip_s=0.0) >= 25.0


def test_double_talk_keeps_the_user_and_the_filter(voices) -> None:
    reply, question = voices
    user, span = with_question(reply, question)
    room = SimulatedRoom(RoomConfig(delay_ms=40, rt60_s=0.3, echo_gain_db=-6.0), RATE)
    out = run(LinearEchoCanceller(), room, reply, user)
    # Subtraction only: what is left besides the user's voice is the echo the filter missed, so it
    # can be measured exactly, sample by sample.
    left = out - room.user
    assert np.corrcoef(out[span], room.user[span])[0, 1] > 0.99
    assert abs(power_db(out[span]) - power_db(room.user[span])) < 0.5
    # The filter was not pulled off course by the user's voice: the echo stays well cancelled.
    assert power_db(room.echo_only[span]) - power_db(left[span]) >= 15.0
    after = slice(span.stop, len(out))
    assert power_db(room.echo_only[after]) - power_db(left[after]) >= 15.0


def test_state_carries_across_frames() -> None:
    # An echo 1000 samples late (6.25 frames): every estimate reaches back across frame borders
    # and partitions. White noise converges far past what speech would in the same time.
    far = (0.1 * np.random.default_rng(0).standard_normal(6 * RATE)).astype(np.float32)
    room = SimulatedRoom(RoomConfig(delay_ms=62.5, rt60_s=0.0, echo_gain_db=-3.0), RATE)
    left = run(LinearEchoCanceller(), room, far)[4 * RATE :]
    echo = room.echo_only[4 * RATE :]
    assert power_db(echo) - power_db(left) >= 35.0
    # No seams: the first and the last samples of each frame are cancelled as well as the middle.
    by_position = np.mean(np.square(left.reshape(-1, FRAME)), axis=0)
    assert by_position[:8].max() < 2 * np.median(by_position)
    assert by_position[-8:].max() < 2 * np.median(by_position)


def test_passes_the_mic_through_while_nothing_plays() -> None:
    near = (0.3 * np.random.default_rng(1).standard_normal(50 * FRAME)).astype(np.float32)
    canceller = LinearEchoCanceller()
    silence = np.zeros(FRAME, np.float32)
    out = np.concatenate([canceller.process(near[i : i + FRAME], silence) for i in range(0, len(near), FRAME)])
    np.testing.assert_array_equal(out, near)


def test_frames_must_be_10_ms() -> None:
    with pytest.raises(ValueError):
        LinearEchoCanceller().process(np.zeros(320, np.float32), np.zeros(320, np.float32))
    with pytest.raises(ValueError):
        LinearEchoCanceller(rate=16050)


def test_echo_canceller_gives_recognition_the_user_whole(voices) -> None:
    reply, question = voices
    user, span = with_question(reply, question)
    room = SimulatedRoom(RoomConfig(delay_ms=40, rt60_s=0.3, echo_gain_db=-6.0), RATE)
    canceller = EchoCanceller(RATE)
    frames = []
    for i in range(0, len(reply) - FRAME + 1, FRAME):
        speaker = reply[i : i + FRAME]
        frames.append(canceller.process_both(room.mic_frame(speaker, user[i : i + FRAME]), speaker))
    linear = np.concatenate([f.linear for f in frames])
    suppressed = np.concatenate([f.suppressed for f in frames])
    # Recognition hears the user as the mic did, sample for sample ...
    assert np.corrcoef(linear[span], room.user[span])[0, 1] > 0.99
    assert abs(power_db(linear[span]) - power_db(room.user[span])) < 0.5
    # ... while voice activity gets AEC3's far deeper cancellation once the reply plays alone.
    after = slice(span.stop, len(linear))
    assert power_db(suppressed[after]) < power_db(linear[after]) - 10.0


def test_linear_canceller_pairs_frames_rendered_ahead(voices) -> None:
    # Real devices hand the speaker a few frames before the mic delivers its own: the linear
    # canceller takes far frames in order, one per mic frame, and learns the lag.
    reply, _ = voices
    room = SimulatedRoom(RoomConfig(delay_ms=40, rt60_s=0.3, echo_gain_db=-6.0), RATE)
    canceller = EchoCanceller(RATE)
    ahead = 3
    far = [reply[i : i + FRAME] for i in range(0, len(reply) - FRAME + 1, FRAME)]
    for frame in far[:ahead]:
        canceller.render(frame)
    linear = []
    for i, frame in enumerate(far):
        if i + ahead < len(far):
            canceller.render(far[i + ahead])
        linear.append(canceller.capture_both(room.mic_frame(frame)).linear)
    assert echo_reduction_db(room.echo_only, np.concatenate(linear), RATE, skip_s=CONVERGED_S) >= 15.0


def test_without_echo_cancellation_both_outputs_are_the_same() -> None:
    near = (0.3 * np.random.default_rng(2).standard_normal(FRAME)).astype(np.float32)
    far = (0.3 * np.random.default_rng(3).standard_normal(FRAME)).astype(np.float32)
    cleaned = EchoCanceller(RATE, echo_cancellation=False).process_both(near, far)
    np.testing.assert_array_equal(cleaned.linear, cleaned.suppressed)
