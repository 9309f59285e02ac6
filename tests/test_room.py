"""The simulated room: its echo arrives when configured, decays as configured, and keeps the
components apart so cancellers can be measured against the truth."""

from __future__ import annotations

import numpy as np
import pytest

from core.audio.room import EchoPath, RoomConfig, SimulatedRoom, make_rir, soft_clip
from core.audio.format import FRAME, RATE


def white(seconds: float, seed: int = 0, level: float = 0.1) -> np.ndarray:
    return (level * np.random.default_rng(seed).standard_normal(int(seconds * RATE))).astype(np.float32)


def play(room: SimulatedRoom, speaker: np.ndarray, user: np.ndarray | None = None) -> np.ndarray:
    frames = len(speaker) // FRAME
    return np.concatenate(
        [
            room.mic_frame(
                speaker[i * FRAME : (i + 1) * FRAME], None if user is None else user[i * FRAME : (i + 1) * FRAME]
            )
            for i in range(frames)
        ]
    )


def decay_time(rir: np.ndarray, start: int) -> float:
    """RT60 from the Schroeder energy decay of the tail after `start`, fitted from -5 to -25 dB."""
    energy = np.cumsum(rir[start:][::-1] ** 2)[::-1]
    curve = 10 * np.log10(energy / energy[0])
    span = np.flatnonzero((curve <= -5) & (curve >= -25))
    slope = np.polyfit(span / RATE, curve[span], 1)[0]  # dB per second
    return -60.0 / slope


@pytest.mark.parametrize("delay_ms", [10, 40, 120, 250])
def test_echo_arrives_at_the_configured_delay(delay_ms: int) -> None:
    room = SimulatedRoom(RoomConfig(delay_ms=delay_ms, rt60_s=0.4, noise_dbfs=-90), RATE)
    play(room, white(1.5, seed=delay_ms))

    played, echo = room.played, room.echo_only
    lags = np.arange(0, 300 * RATE // 1000)
    xcorr = [np.dot(echo[lag:], played[: len(played) - lag]) for lag in lags]
    found_ms = lags[int(np.argmax(xcorr))] * 1000 / RATE
    assert abs(found_ms - delay_ms) <= 1


def test_streaming_echo_equals_whole_signal_convolution() -> None:
    config = RoomConfig(delay_ms=75, rt60_s=0.5, nonlinearity=0.5, noise_dbfs=-60, seed=3)
    room = SimulatedRoom(config, RATE)
    speaker = white(2.0, seed=1, level=0.3)
    play(room, speaker)

    whole = np.convolve(soft_clip(speaker.astype(np.float64), config.nonlinearity), room.rir)[: len(speaker)]
    np.testing.assert_allclose(room.echo_only, whole, atol=1e-5)


def test_echo_path_does_not_care_how_the_stream_is_cut() -> None:
    rng = np.random.default_rng(4)
    rir = rng.standard_normal(3000) * np.exp(-np.arange(3000) / 500)
    signal = rng.standard_normal(20000)
    path = EchoPath(rir)
    cuts = np.cumsum(rng.integers(1, 700, size=100))
    streamed = np.concatenate([path.process(block) for block in np.split(signal, cuts[cuts < len(signal)])])
    np.testing.assert_allclose(streamed, np.convolve(signal, rir)[: len(signal)], atol=1e-4)


@pytest.mark.parametrize("rt60_s", [0.2, 0.4, 0.6])
def test_rir_decays_with_the_configured_rt60(rt60_s: float) -> None:
    config = RoomConfig(delay_ms=20, rt60_s=rt60_s)
    rir = make_rir(config, RATE)
    direct = int(config.delay_ms * RATE / 1000)
    assert abs(decay_time(rir, direct + 1) - rt60_s) < 0.2 * rt60_s


def test_rir_is_a_normalised_direct_path_then_a_tail() -> None:
    config = RoomConfig(delay_ms=40, rt60_s=0.3, direct_to_reverb_db=6.0)
    rir = make_rir(config, RATE)
    direct = 40 * RATE // 1000
    assert np.sum(rir**2) == pytest.approx(1.0)
    assert int(np.argmax(np.abs(rir))) == direct
    assert not rir[:direct].any()
    ratio_db = 10 * np.log10(rir[direct] ** 2 / np.sum(rir[direct + 1 :] ** 2))
    assert ratio_db == pytest.approx(6.0, abs=1e-6)
    np.testing.assert_array_equal(rir, make_rir(config, RATE))


def test_mic_is_echo_plus_user_plus_noise_and_the_parts_are_kept() -> None:
    config = RoomConfig(delay_ms=30, echo_gain_db=-6, noise_dbfs=-50)
    room = SimulatedRoom(config, RATE)
    speaker, user = white(1.0, seed=5), white(1.0, seed=6)
    mic = play(room, speaker, user)

    np.testing.assert_array_equal(room.played, speaker)
    np.testing.assert_array_equal(room.user, user)
    noise = mic - room.echo_only - room.user
    assert 20 * np.log10(np.sqrt(np.mean(noise**2))) == pytest.approx(-50, abs=0.5)
    # The RIR has unit energy, so for white noise the echo's level is the coupling gain.
    level_db = 10 * np.log10(np.mean(room.echo_only[RATE // 2 :] ** 2) / np.mean(speaker**2))
    assert level_db == pytest.approx(-6, abs=1.0)


def test_nonlinearity_bends_only_loud_peaks() -> None:
    quiet, loud = np.float32(0.01), np.float32(0.8)
    assert soft_clip(np.array([quiet]), 0.5)[0] == pytest.approx(quiet, rel=1e-3)
    assert soft_clip(np.array([loud]), 0.5)[0] < 0.8 * loud
    np.testing.assert_array_equal(soft_clip(np.array([loud]), 0.0), [loud])


def test_config_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        RoomConfig(delay_ms=-1)
    with pytest.raises(ValueError):
        RoomConfig(nonlinearity=2)
