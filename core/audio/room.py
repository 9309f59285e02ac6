"""A simulated room for tests and benchmarks: what a laptop's microphone hears while its own
speakers play, built from parts whose truth is known.

    mic = echo(speaker) + user + noise
    echo = loudspeaker soft clipping -> room impulse response (direct path + reverberant tail) -> gain

The room keeps every component apart as well (`played`, `user`, `echo_only`), so a benchmark can
measure how much echo a canceller removed and how much of the user's voice it kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# An exponential envelope falls by 60 dB (amplitude 1e-3) over RT60: exp(-DECAY_60 * t / RT60).
DECAY_60 = 3 * np.log(10)


@dataclass(frozen=True)
class RoomConfig:
    delay_ms: float = 40.0  # speaker -> mic bulk delay (device buffers + air), 10-250 ms
    rt60_s: float = 0.3  # reverberation time; small furnished rooms are ~0.2-0.6 s
    echo_gain_db: float = -6.0  # speaker-to-mic coupling: laptop speakers sit right by the mic
    direct_to_reverb_db: float = 6.0  # energy of the direct path over the reverberant tail
    nonlinearity: float = 0.0  # loudspeaker overdrive into a soft clipper; 0 = linear, 1 = harsh
    noise_dbfs: float = -70.0  # RMS of the mic's own white noise
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.delay_ms <= 1000:
            raise ValueError(f"delay_ms must be within 0-1000, got {self.delay_ms}")
        if self.rt60_s < 0:
            raise ValueError(f"rt60_s must not be negative, got {self.rt60_s}")
        if not 0 <= self.nonlinearity <= 1:
            raise ValueError(f"nonlinearity must be within 0-1, got {self.nonlinearity}")


def make_rir(config: RoomConfig, rate: int) -> np.ndarray:
    """Room impulse response with unit energy: a unit direct path at the delay, then exponentially
    decaying Gaussian noise for the reverberant tail, so echo_gain_db alone sets the echo level."""
    start = int(round(config.delay_ms * rate / 1000))
    tail_len = int(round(config.rt60_s * rate))
    rir = np.zeros(start + 1 + tail_len)
    rir[start] = 1.0
    if tail_len:
        rng = np.random.default_rng((config.seed, 0))
        t = np.arange(1, tail_len + 1) / rate
        tail = rng.standard_normal(tail_len) * np.exp(-DECAY_60 * t / config.rt60_s)
        tail *= np.sqrt(10 ** (-config.direct_to_reverb_db / 10) / np.sum(tail**2))
        rir[start + 1 :] = tail
    return rir / np.sqrt(np.sum(rir**2))


def soft_clip(samples: np.ndarray, amount: float) -> np.ndarray:
    """A small loudspeaker pushed hard: tanh compression whose drive grows with `amount`. Unity
    gain for quiet signals, so only the loud peaks are bent (and create harmonics a linear
    canceller cannot model)."""
    if amount == 0:
        return samples
    drive = 4.0 * amount
    return np.tanh(drive * samples) / drive


class EchoPath:
    """Streaming convolution with a fixed impulse response, one block at a time.

    FFT overlap-add: each block is convolved whole and its tail is carried into the following
    blocks, so the stream equals `np.convolve(signal, rir)[:len(signal)]` however it is cut.
    """

    def __init__(self, rir: np.ndarray) -> None:
        self.rir = np.asarray(rir, dtype=np.float64)
        self._spectra: dict[int, np.ndarray] = {}  # FFT size -> spectrum of the RIR
        self._carry = np.zeros(len(self.rir) - 1)

    def process(self, block: np.ndarray) -> np.ndarray:
        n = len(block)
        full = n + len(self.rir) - 1
        size = 1 << (full - 1).bit_length()
        if size not in self._spectra:
            self._spectra[size] = np.fft.rfft(self.rir, size)
        out = np.fft.irfft(np.fft.rfft(block, size) * self._spectra[size], size)[:full]
        out[: len(self._carry)] += self._carry
        self._carry = out[n:]
        return out[:n].astype(np.float32)


class SimulatedRoom:
    """One laptop in one room: `mic_frame` turns what the speaker plays and what the user says
    during the same 10 ms into what the mic records."""

    def __init__(self, config: RoomConfig, rate: int = 16000, record: bool = True) -> None:
        """`record=False`: keep none of the ground truth (an hour of it is hundreds of MB)."""
        self.config = config
        self.rate = rate
        self.record = record
        self.rir = make_rir(config, rate) * 10 ** (config.echo_gain_db / 20)
        self._path = EchoPath(self.rir)
        self._noise_rms = 10 ** (config.noise_dbfs / 20)
        # Its own stream from the same seed: the RIR's tail is drawn from (seed, 0).
        self._rng = np.random.default_rng((config.seed, 1))
        self._played: list[np.ndarray] = []
        self._user: list[np.ndarray] = []
        self._echo: list[np.ndarray] = []

    def mic_frame(self, speaker_frame: np.ndarray, user_frame: np.ndarray | None = None) -> np.ndarray:
        speaker = np.asarray(speaker_frame, dtype=np.float32)
        user = np.zeros_like(speaker) if user_frame is None else np.asarray(user_frame, dtype=np.float32)
        if user.shape != speaker.shape:
            raise ValueError(f"speaker and user frames differ in shape: {speaker.shape} vs {user.shape}")
        echo = self._path.process(soft_clip(speaker, self.config.nonlinearity))
        noise = self._rng.normal(0.0, self._noise_rms, len(speaker)).astype(np.float32)
        if self.record:
            self._played.append(speaker)
            self._user.append(user)
            self._echo.append(echo)
        return echo + user + noise

    @property
    def played(self) -> np.ndarray:
        """Everything the speaker was handed: the canceller's far-end reference."""
        return _joined(self._played)

    @property
    def user(self) -> np.ndarray:
        """The user's voice alone, as it reached the mic."""
        return _joined(self._user)

    @property
    def echo_only(self) -> np.ndarray:
        """The speaker's echo alone, as it reached the mic."""
        return _joined(self._echo)


def _joined(frames: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(frames) if frames else np.zeros(0, np.float32)
