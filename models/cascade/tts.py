"""Text to speech with Piper (VITS, ONNX) on the packaged voice."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Iterator

import numpy as np

from models.engine import single_threaded
from models.registry.atomic import write_json

log = logging.getLogger(__name__)

# Piper's length scale does not give the speed it is the inverse of: each phoneme's duration is
# rounded up to whole frames and the pauses barely move, so on the packaged voice a length scale
# of 1/1.5 spoke 1.34 times as fast, 1/2 only 1.54 times, and no scale gets past ~2. The voice is
# timed once at these scales (a few seconds, then kept beside it) and the scale for a speed is read
# off that curve.
SPEED_PROBE_TEXT = (
    "The train leaves at half past seven, so we should pack tonight. "
    "Your plants look much healthier since you moved them to the window. "
    "I checked the weather, and it looks like a bright, calm day for a walk by the lake."
)
PROBE_SCALES = (1.4, 1.2, 1.0, 0.85, 0.75)
PROBE_RENDERINGS = 3
# Away from 1 the curve is only a guide: phoneme durations are whole frames and pauses barely
# move, so how a scale changes the speed depends on the text (measured on texts other than the
# probe's: asked 1.5, got 1.43; 1.8, 1.72; 0.75, 0.79). Within this band the text moves it by 2% or
# less; past it the voice runs at the band's edge and the style chain makes up the rest.
NATIVE_BAND = (0.87, 1.15)
SPEED_FILE = "speed-calibration.json"
LOUD = 0.01  # speech, for timing: from the first sample above this to the last
# onnxruntime keeps the memory of its largest run for reuse, so one long clause would hold
# hundreds of MB for the rest of the session (about 5 MB a word). The arena is grown at load to
# what a clause of this many phoneme ids needs (about 25 words, longer than most), and a longer
# input hands back what it took once it is voiced: memory stays flat whatever the model writes.
ARENA_KEPT_IDS = 300
# A clause of about ARENA_KEPT_IDS phoneme ids, voiced once at load to grow the arena.
ARENA_TEXT = (
    "When you get a moment this evening, could you check whether the garden gate is closed, "
    "because the wind is getting much stronger out there tonight?"
)


class _BoundedArena:
    """The voice's onnxruntime session, asking the runtime to shrink its memory arena after a
    run whose input is longer than ARENA_KEPT_IDS phoneme ids."""

    def __init__(self, session) -> None:
        import onnxruntime

        self._session = session
        self._shrink = onnxruntime.RunOptions()
        self._shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def run(self, outputs, feeds, run_options=None):
        ids = feeds.get("input")
        if ids is not None and ids.shape[-1] > ARENA_KEPT_IDS:
            run_options = self._shrink
        return self._session.run(outputs, feeds, run_options)

    def __getattr__(self, name: str):
        return getattr(self._session, name)


class PiperTts:
    def __init__(
        self, voice_dir: Path, threads: int = 2, providers: tuple[str, ...] = ("CPUExecutionProvider",)
    ) -> None:
        """providers: onnxruntime's, in order of preference (see models.devices)."""
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig

        from models.registry.offline import quiet_onnxruntime

        quiet_onnxruntime()
        # Built here rather than by PiperVoice.load so the thread count is ours to set: the voice
        # shares two cores with the chat model, which keeps writing while it speaks.
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        config = json.loads((voice_dir / "voice.onnx.json").read_text(encoding="utf-8"))
        session = onnxruntime.InferenceSession(
            str(voice_dir / "voice.onnx"), sess_options=options, providers=list(providers or ("CPUExecutionProvider",))
        )
        self._voice = PiperVoice(session=_BoundedArena(session), config=PiperConfig.from_dict(config))
        self.rate: int = self._voice.config.sample_rate
        self._dir = voice_dir
        self._speeds: tuple[np.ndarray, np.ndarray] | None = None  # (length scales, speeds they give)
        self._speeds_lock = threading.Lock()

    def length_scale(self, speed: float) -> tuple[float, float]:
        """Piper's length scale for this speed, and the speed it gives (the nearest the voice
        reaches within NATIVE_BAND; the caller makes up the rest)."""
        if speed == 1.0:
            return 1.0, 1.0
        scales, speeds = self.speed_curve()
        reached = float(np.clip(speed, max(speeds[0], NATIVE_BAND[0]), min(speeds[-1], NATIVE_BAND[1])))
        return float(np.exp(np.interp(np.log(reached), np.log(speeds), np.log(scales)))), reached

    @single_threaded
    def speed_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """Length scales and the speeds they give, slowest first: measured once, kept in the voice's
        folder (or measured again when that file is missing or unreadable)."""
        with self._speeds_lock:
            if self._speeds is None:
                self._speeds = self._load_speeds() or self._measure_speeds()
            return self._speeds

    def _load_speeds(self) -> tuple[np.ndarray, np.ndarray] | None:
        try:
            data = json.loads((self._dir / SPEED_FILE).read_text(encoding="utf-8"))
            scales, speeds = np.array(data["length_scales"], float), np.array(data["speeds"], float)
        except FileNotFoundError:  # not measured yet
            return None
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("%s is unreadable; measuring the speeds again", self._dir / SPEED_FILE, exc_info=True)
            return None
        ok = len(scales) == len(speeds) >= 2 and np.all(np.diff(speeds) > 0) and np.all(scales > 0)
        return (scales, speeds) if ok else None

    def _measure_speeds(self) -> tuple[np.ndarray, np.ndarray]:
        from piper import SynthesisConfig

        def speaking(scale: float) -> float:
            chunks = self._voice.synthesize(SPEED_PROBE_TEXT, syn_config=SynthesisConfig(length_scale=scale))
            return speaking_seconds(np.concatenate([c.audio_float_array for c in chunks]), self.rate)

        # Each scale timed as the mean of a few renderings: the voice's timing is random.
        spans = np.array([np.mean([speaking(s) for _ in range(PROBE_RENDERINGS)]) for s in PROBE_SCALES])
        speeds = spans[PROBE_SCALES.index(1.0)] / spans
        # Past where the voice stops getting faster (or slower) a curve cannot be inverted: keep
        # the part that still moves.
        keep = [0]
        for i in range(1, len(speeds)):
            if speeds[i] > speeds[keep[-1]] * 1.01:
                keep.append(i)
        scales, speeds = np.array(PROBE_SCALES)[keep], speeds[keep]
        try:
            write_json(
                self._dir / SPEED_FILE, {"length_scales": scales.tolist(), "speeds": np.round(speeds, 4).tolist()}
            )
        except OSError:  # a read-only folder: measured again next time
            log.warning("could not keep the speed curve beside the voice", exc_info=True)
        return scales, speeds

    @single_threaded
    def warm(self) -> None:
        """Voice a clause of about ARENA_KEPT_IDS phoneme ids: the runtime's buffers and memory
        arena then have the size they keep from the start (see ARENA_KEPT_IDS)."""
        for _ in self._voice.synthesize(ARENA_TEXT):
            pass

    @single_threaded
    def phoneme_ids(self, text: str) -> int:
        """How many phoneme ids the voice's model is given for `text` (all its sentences)."""
        return sum(len(self._voice.phonemes_to_ids(p)) for p in self._voice.phonemize(text))

    @single_threaded
    def synthesize(self, text: str, speed: float = 1.0, expressiveness: float = 1.0) -> Iterator[np.ndarray]:
        """Float32 audio for `text`, one array per sentence Piper finds in it.

        Speed uses Piper's own length scale (pitch stays put): the voice itself talks faster, at
        the scale that gives this speed on this voice (`length_scale`).
        Expressiveness scales the voice's noise scales: how much its pitch, timing and timbre vary
        (1.0 is the voice's own setting; lower is flatter and calmer, higher livelier).
        """
        from piper import SynthesisConfig

        own = self._voice.config
        config = SynthesisConfig(
            length_scale=self.length_scale(speed)[0],
            noise_scale=own.noise_scale * expressiveness,
            noise_w_scale=own.noise_w_scale * expressiveness,
        )
        for chunk in self._voice.synthesize(text, syn_config=config):
            yield chunk.audio_float_array.astype(np.float32, copy=False)


def speaking_seconds(audio: np.ndarray, rate: int) -> float:
    """How long the voice speaks in `audio`: from its first sample louder than LOUD to its last."""
    loud = np.flatnonzero(np.abs(audio) > LOUD)
    return float(loud[-1] - loud[0]) / rate if len(loud) else 0.0


def trim_tail(samples: np.ndarray, rate: int, keep_ms: int = 60, floor: float = 0.01) -> np.ndarray:
    """Shorten the silence a synthesized piece ends with. Piper closes every piece as if it ended a
    sentence (~150 ms of silence); inside a sentence that reads as a hesitation."""
    loud = np.flatnonzero(np.abs(samples) > floor)
    if len(loud) == 0:
        return samples
    return samples[: min(len(samples), loud[-1] + 1 + rate * keep_ms // 1000)]
