"""The echo canceller on real speech in the simulated room: it removes the app's own voice, keeps
the user's, and leaves the signal alone when switched off."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from core.audio.echo import EchoCanceller, to_int16
from core.audio.measure import echo_reduction_db
from core.audio.room import RoomConfig, SimulatedRoom
from core.audio.format import FRAME, RATE

REPLY = (
    "The weather today is mild, with a light breeze from the west and a few clouds in the "
    "afternoon. Later in the evening, rain may arrive along the coast."
)
QUESTION = "Could you remind me what time the train leaves tomorrow morning?"
USER_STARTS_S = 4.0  # the user cuts in after the canceller has heard the reply for a while


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


def run(canceller: EchoCanceller, room: SimulatedRoom, far: np.ndarray, user: np.ndarray | None = None) -> np.ndarray:
    """Plays `far` through the room frame by frame, as the audio worker would, and cleans the mic."""
    out = []
    for i in range(len(far) // FRAME):
        speaker = far[i * FRAME : (i + 1) * FRAME]
        voice = None if user is None else user[i * FRAME : (i + 1) * FRAME]
        out.append(canceller.process(room.mic_frame(speaker, voice), speaker))
    return np.concatenate(out)


def alone(samples: np.ndarray, **switches: bool) -> np.ndarray:
    """`samples` through a fresh canceller with nothing playing: WebRTC's delay and filtering
    without any echo to remove, the fair reference for what came out of a real run."""
    canceller = EchoCanceller(RATE, **switches)
    silence = np.zeros(FRAME, np.float32)
    return np.concatenate(
        [canceller.process(samples[i : i + FRAME], silence) for i in range(0, len(samples) - FRAME + 1, FRAME)]
    )


def power_db(samples: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(samples, dtype=np.float64)) + 1e-20))


@pytest.mark.parametrize("noise_suppression", [True, False])
@pytest.mark.parametrize("delay_ms", [40, 200])
def test_cancels_the_echo_of_real_speech(voices, delay_ms: int, noise_suppression: bool) -> None:
    reply, _ = voices
    room = SimulatedRoom(RoomConfig(delay_ms=delay_ms, rt60_s=0.3, echo_gain_db=-6.0), RATE)
    residual = run(EchoCanceller(RATE, noise_suppression=noise_suppression), room, reply)
    assert echo_reduction_db(room.echo_only, residual, RATE) >= 25.0


def test_double_talk_keeps_the_user_and_removes_the_echo(voices) -> None:
    # Noise suppression off: it adapts differently with and without echo at the mic, so no
    # clean reference would exist to compare the user's voice with.
    switches = dict(noise_suppression=False)
    reply, question = voices
    user = np.zeros_like(reply)
    start = int(USER_STARTS_S * RATE)
    user[start : start + len(question)] = question[: len(user) - start]
    span = slice(start, start + len(question))
    room = SimulatedRoom(RoomConfig(delay_ms=40, rt60_s=0.3, echo_gain_db=-6.0), RATE)

    out = run(EchoCanceller(RATE, **switches), room, reply, user)
    clean_user = alone(room.user, **switches)[span]
    plain_echo = alone(room.echo_only, **switches)[span]
    out = out[span]

    assert np.corrcoef(out, clean_user)[0, 1] > 0.8
    assert abs(power_db(out) - power_db(clean_user)) < 3.0
    # How much of the echo, as it would come out if nothing were cancelled, is left in the output.
    (_, echo_share), *_ = np.linalg.lstsq(np.stack([clean_user, plain_echo], axis=1), out, rcond=None)
    assert 20 * np.log10(abs(echo_share)) < -15.0


def test_all_switches_off_is_an_exact_pass_through() -> None:
    rng = np.random.default_rng(0)
    canceller = EchoCanceller(RATE, echo_cancellation=False, noise_suppression=False, high_pass_filter=False)
    for _ in range(50):
        near = (0.3 * rng.standard_normal(FRAME)).astype(np.float32)
        far = (0.3 * rng.standard_normal(FRAME)).astype(np.float32)
        np.testing.assert_array_equal(canceller.process(near, far), near)


def test_switches_change_between_turns() -> None:
    near = (0.3 * np.random.default_rng(1).standard_normal(FRAME)).astype(np.float32)
    far = np.zeros(FRAME, np.float32)
    canceller = EchoCanceller(RATE)
    canceller.configure(echo_cancellation=False, noise_suppression=False, high_pass_filter=False)
    np.testing.assert_array_equal(canceller.process(near, far), near)
    canceller.configure(high_pass_filter=True)
    assert not np.array_equal(canceller.process(near, far), near)
    with pytest.raises(TypeError):
        canceller.configure(reverb=True)


def test_noise_suppression_lowers_stationary_noise() -> None:
    noise = (10 ** (-40 / 20) * np.random.default_rng(2).standard_normal(3 * RATE)).astype(np.float32)
    settled = slice(RATE, None)  # the suppressor learns the noise floor during the first second
    without = alone(noise, echo_cancellation=False, noise_suppression=False)[settled]
    with_ns = alone(noise, echo_cancellation=False, noise_suppression=True)[settled]
    assert power_db(with_ns) < power_db(without) - 6.0


def test_delay_hint_is_accepted() -> None:
    canceller = EchoCanceller(RATE)
    canceller.set_delay_ms(120)
    out = canceller.process(np.zeros(FRAME, np.float32), np.zeros(FRAME, np.float32))
    assert out.shape == (FRAME,) and out.dtype == np.float32
    with pytest.raises(ValueError):
        canceller.set_delay_ms(-5)


def test_frames_must_be_10_ms() -> None:
    with pytest.raises(ValueError):
        EchoCanceller(RATE).process(np.zeros(320, np.float32), np.zeros(320, np.float32))


def test_conversion_clips_rather_than_wraps() -> None:
    np.testing.assert_array_equal(
        to_int16(np.array([1.5, -1.5, 1.0, -1.0, 0.5])), [32767, -32768, 32767, -32768, 16384]
    )


def test_echo_reduction_counts_only_converged_far_end_speech() -> None:
    rng = np.random.default_rng(3)
    echo = rng.standard_normal(4 * RATE).astype(np.float32)
    echo[int(2.5 * RATE) : 3 * RATE] = 0  # the speaker pauses
    residual = 0.01 * echo  # 40 dB below the echo ...
    residual[: RATE // 2] = echo[: RATE // 2]  # ... except while converging
    residual[int(2.5 * RATE) : 3 * RATE] = 0.1  # and noise while the far end is silent
    assert echo_reduction_db(echo, residual, RATE, skip_s=1.0) == pytest.approx(40.0, abs=0.01)
