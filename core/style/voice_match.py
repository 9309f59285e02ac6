"""Voice matching: move the companion's voice toward a reference speaker.

What it does, honestly: it measures four things about the reference speaker (median pitch, pitch
range, vocal-tract length as a formant scale, and spectral tilt) and re-synthesizes each reply
clause with the WORLD vocoder so those four match. It does not copy a timbre, an accent or a
manner of speaking the way a neural voice-cloning model does: the result is the companion's voice
made higher or lower, "smaller" or "larger", brighter or darker, like the reference.

Two halves:
  analysis:   `analyze_reference(audio, rate)` checks the clip and measures a `VoiceProfile`;
  conversion: `StreamingVoiceMatcher` turns reply chunks (whole clauses) into matched chunks,
              using the `VoiceMapping` between the voice's own profile and the reference's.

F0 comes from Praat's tracker (core.style.pitch: on the packaged voice WORLD's Harvest flips to a
doubled period in creaky stretches and DIO mostly reads the doubled one). A clause is converted in
blocks of a few hundred milliseconds, each handed on as soon as it is ready, so the first sound of a
clause waits only for its first block (~20 ms); the whole costs ~0.08 s of one core per second of
speech.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Iterable, Iterator, Protocol

import numpy as np
import pyworld
import soxr

from core.audio.vad import load_vad
from core.style.pitch import TRACKER, track
from core.audio.format import RATE

WORK_RATE = RATE  # analysis rate: the voice activity model's, and enough for formants and tilt
MIN_SECONDS, MAX_SECONDS = 5.0, 30.0
MIN_SPEECH_SECONDS = 3.0  # of voice activity
MIN_VOICED_SECONDS = 1.0  # of frames with a pitch, inside the voice activity
SILENT_DBFS = -45.0  # the loudest 32 ms of the clip below this: nothing was recorded
CLIP_LEVEL = 0.999  # of full scale
CLIP_SHARE = 0.001  # more samples than this at full scale: the recording was clipped
VAD_WINDOW = 512  # samples at 16 kHz: one Silero probability each
F0_FLOOR, F0_CEIL = 50.0, 600.0  # low creak to children
FRAME_MS = 5.0
# Mean envelopes are kept on a log-frequency grid, so a vocal-tract length change (all formants
# scaled by one factor) is a plain shift along it. 1/24 octave, 100 Hz to 7.5 kHz.
GRID_STEPS_PER_OCTAVE = 24
GRID_HZ = 100.0 * 2.0 ** (np.arange(int(GRID_STEPS_PER_OCTAVE * math.log2(75.0)) + 1) / GRID_STEPS_PER_OCTAVE)
FORMANT_BAND_HZ = (250.0, 4500.0)  # F1 to F4: the part of the envelope that the vocal tract shapes
MAX_FORMANT_OCTAVES = 0.5  # ratios 0.71-1.41: from a large man to a small child, no further
SHIFT_PRICE = 0.06  # of correlation, for the largest formant shift (see `formant_ratio`)
NEUTRAL_TRACT_CM, SPEED_OF_SOUND_CM_S = 17.5, 35000.0
TILT_BAND_HZ = (300.0, 6000.0)
TILT_PIVOT_HZ = 1000.0  # the tilt correction turns around here, so loudness barely changes
MAX_F0_SHIFT_ST = 12.0
RANGE_SCALE_LIMITS = (0.67, 1.5)  # the range estimate is noisy; beyond this intonation sounds odd
MAX_TILT_CHANGE = 6.0  # dB per octave
EDGE_FADE_S = 0.004  # each re-synthesized piece starts and ends at zero: no click at the joins
FIRST_BLOCK_FRAMES = 30  # 150 ms: converted before the first sound of a clause
BLOCK_FRAMES = 80  # 400 ms: the blocks after it, converted while the earlier ones play
MIN_BLOCK_FRAMES = 10  # a last block shorter than this joins the one before
EDGE_SEARCH_FRAMES = 12  # how far a block edge may move to land on an unvoiced frame
MARGIN_FRAMES = 10  # context on each side of a block: a WORLD pulse reaches +-23 ms at 22 kHz
JOIN_S = 0.002  # half the cross-fade between blocks
LIMIT = 0.9  # soft limiting starts here
MIN_PIVOT_FRAMES = 40  # voiced frames (200 ms) for a piece's own pitch centre
MIN_PIECE_S = 0.2  # shorter chunks give the tracker too little to go on; they wait for the next
# The voice's own profile: its pitch wanders by a semitone or more from one rendering of a short
# text to the next, so it is measured on as much speech as a clip may hold (about 25 s).
VOICE_SAMPLE_TEXT = (
    "Good morning! I checked the weather for you, and it looks like a bright, calm day. "
    "Would you like me to read the news, or shall we plan your afternoon together? "
    "Remember that your sister's birthday is on Thursday, so maybe we could pick a present. "
    "I found three recipes for dinner: a vegetable soup, baked fish with lemon, or a quick pasta. "
    "By the way, the library books are due next Monday. Should I remind you on Sunday evening? "
    "That's all for now. Just ask whenever you need something."
)


class ReferenceError(ValueError):  # shadows Python's weakref ReferenceError, which no code here uses
    """A reference clip that cannot be used; the message is one sentence for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class VoiceProfile:
    """What the matcher needs to know about a speaker; saved in presets as JSON."""

    f0_median_hz: float  # of voiced frames
    f0_range_st: float  # 10th to 90th percentile of voiced F0, in semitones
    formant_scale: float  # formants relative to a 17.5 cm neutral tube's; >1 is a shorter vocal tract
    tilt_db_per_octave: float  # slope of the average voiced spectrum, 300 Hz - 6 kHz
    envelope_db: tuple[float, ...]  # average voiced spectral envelope on GRID_HZ, mean 0 dB
    measured_by: str = TRACKER  # the pitch tracker: medians from different trackers do not compare

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "envelope_db": list(self.envelope_db)}

    @classmethod
    def from_json(cls, data: object) -> "VoiceProfile":
        """The profile saved by `to_json`; ValueError when a field is missing or not a number."""
        names = [f.name for f in fields(cls)]
        if not isinstance(data, dict) or set(data) != set(names):
            raise ValueError(f"a voice profile has exactly the fields {', '.join(names)}")
        envelope = data["envelope_db"]
        if not isinstance(envelope, (list, tuple)) or len(envelope) != len(GRID_HZ):
            raise ValueError(f"envelope_db must be a list of {len(GRID_HZ)} numbers")
        if data["measured_by"] != TRACKER:
            raise ValueError(f"the profile was measured with {data['measured_by']!r}, not {TRACKER!r}")
        values = [data[n] for n in names if n not in ("envelope_db", "measured_by")] + list(envelope)
        if not all(_is_number(v) for v in values):
            raise ValueError("every value of a voice profile must be a finite number")
        if data["f0_median_hz"] <= 0 or data["formant_scale"] <= 0:
            raise ValueError("f0_median_hz and formant_scale must be positive")
        return cls(
            float(data["f0_median_hz"]),
            float(data["f0_range_st"]),
            float(data["formant_scale"]),
            float(data["tilt_db_per_octave"]),
            tuple(float(v) for v in envelope),
        )


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class VoiceMapping:
    """How to change one voice into another; the defaults change nothing but pass through WORLD."""

    f0_pivot_hz: float | None  # the source's median F0: the range scales around it in pieces with
    # little voicing (others use their own median; see `map_f0`), and the
    # source's envelopes are smoothed at no lower a pitch (see `envelopes`);
    # None: each piece's own median serves
    f0_shift_st: float = 0.0
    f0_range_scale: float = 1.0
    formant_ratio: float = 1.0  # target formant frequencies over source ones
    tilt_db_per_octave: float = 0.0  # added to the source's tilt


class Synthesizer(Protocol):
    rate: int

    def synthesize(self, text: str) -> Iterable[np.ndarray]: ...


# ---- analysis -----------------------------------------------------------------------------------


def analyze_reference(audio: np.ndarray, rate: int) -> VoiceProfile:
    """The profile of the speaker in a 5-30 s clip at any rate, channel count (channels along the
    shorter axis) and sample format; ReferenceError says why a clip cannot be used."""
    raw = _as_float(audio)
    mono = raw if raw.ndim == 1 else raw.mean(axis=int(np.argmin(raw.shape)))
    seconds = len(mono) / rate
    if seconds < MIN_SECONDS:
        raise ReferenceError(f"The clip is {seconds:.1f} s long; record at least {MIN_SECONDS:.0f} seconds of speech.")
    if seconds > MAX_SECONDS:
        raise ReferenceError(f"The clip is {seconds:.0f} s long; use at most {MAX_SECONDS:.0f} seconds.")
    x = soxr.resample(mono, rate, WORK_RATE).astype(np.float64)
    if _loudest_window_dbfs(x) < SILENT_DBFS:
        raise ReferenceError(
            f"The clip is silent (nothing in it is louder than {SILENT_DBFS:.0f} dBFS); check the microphone."
        )
    clipped = float(np.mean(np.abs(raw) >= CLIP_LEVEL))
    if clipped > CLIP_SHARE:
        raise ReferenceError(
            f"The clip is distorted ({100 * clipped:.1f}% of it is at full scale); record it again a little quieter."
        )
    speech = _speech_windows(x)
    speech_seconds = speech.sum() * VAD_WINDOW / WORK_RATE
    if speech_seconds < MIN_SPEECH_SECONDS:
        raise ReferenceError(
            f"The clip does not sound like speech (only {speech_seconds:.1f} s of talking "
            f"found); record at least {MIN_SPEECH_SECONDS:.0f} seconds of one person talking."
        )
    f0 = track(x, WORK_RATE, FRAME_MS, F0_FLOOR, F0_CEIL)
    times = np.arange(len(f0)) * FRAME_MS / 1000
    window = np.minimum((times * WORK_RATE) // VAD_WINDOW, len(speech) - 1).astype(int)
    voiced = (f0 > 0) & speech[window]
    if voiced.sum() * FRAME_MS / 1000 < MIN_VOICED_SECONDS:
        raise ReferenceError("The clip has too little voiced speech, as if whispered; record someone talking normally.")
    low, median, high = np.percentile(f0[voiced], [10, 50, 90])
    envelope = _mean_envelope_db(envelopes(x, f0, times, WORK_RATE, median)[voiced], WORK_RATE)
    return VoiceProfile(
        f0_median_hz=round(float(median), 2),
        f0_range_st=round(float(12 * np.log2(high / low)), 2),
        formant_scale=round(formant_ratio(_neutral_tract_db(), envelope), 4),
        tilt_db_per_octave=round(_tilt(envelope), 2),
        envelope_db=tuple(round(float(v), 2) for v in envelope),
    )


def profile_of_voice(tts: Synthesizer) -> VoiceProfile:
    """The profile of a text-to-speech voice, from a few sentences it speaks."""
    return analyze_reference(np.concatenate(list(tts.synthesize(VOICE_SAMPLE_TEXT))), tts.rate)


def _as_float(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio)
    if np.issubdtype(audio.dtype, np.integer):
        return audio.astype(np.float32) / (np.iinfo(audio.dtype).max + 1)
    return audio.astype(np.float32, copy=False)


def _loudest_window_dbfs(x: np.ndarray) -> float:
    windows = x[: len(x) // VAD_WINDOW * VAD_WINDOW].reshape(-1, VAD_WINDOW)
    return float(10 * np.log10(np.max(np.mean(windows**2, axis=1)) + 1e-20))


def _speech_windows(x: np.ndarray) -> np.ndarray:
    """Which 32 ms windows hold speech, by the packaged Silero model."""
    vad = load_vad()
    vad.reset()
    return np.asarray(vad.push(x.astype(np.float32))) > 0.5


def _mean_envelope_db(envelopes: np.ndarray, rate: int) -> np.ndarray:
    """Average of WORLD envelopes (power) on GRID_HZ in dB, shifted to a mean of 0 dB."""
    freqs = np.arange(envelopes.shape[1]) * rate / (2 * (envelopes.shape[1] - 1))
    db = 10 * np.log10(np.interp(GRID_HZ, freqs, envelopes.mean(axis=0)) + 1e-20)
    return db - db.mean()


def _tilt(envelope_db: np.ndarray) -> float:
    band = (GRID_HZ >= TILT_BAND_HZ[0]) & (GRID_HZ <= TILT_BAND_HZ[1])
    return float(np.polyfit(np.log2(GRID_HZ[band]), envelope_db[band], 1)[0])


def _neutral_tract_db(length_cm: float = NEUTRAL_TRACT_CM) -> np.ndarray:
    """Envelope of a uniform tube closed at the glottis: resonances at odd quarter wavelengths
    (500, 1500, 2500 Hz... for 17.5 cm), on GRID_HZ, mean 0 dB. Only a yardstick for formant_scale."""
    db = np.zeros_like(GRID_HZ)
    for n in range(1, 8):
        formant = (2 * n - 1) * SPEED_OF_SOUND_CM_S / (4 * length_cm)
        bandwidth = 50.0 + 0.05 * formant
        db -= 10 * np.log10((1 - (GRID_HZ / formant) ** 2) ** 2 + (GRID_HZ * bandwidth / formant**2) ** 2)
    return db - db.mean()


def formant_ratio(source_db: np.ndarray | tuple[float, ...], target_db: np.ndarray | tuple[float, ...]) -> float:
    """The frequency scale that best lays the source's formant region over the target's.

    Both envelopes are on GRID_HZ, where scaling every frequency is a shift. Each candidate shift
    compares the two after removing a straight line from each, so tilt and level do not count.
    Two clips of different sentences match only so well (correlation ~0.75), and their broad
    hump can line up again half an octave away almost as well; so each shift pays a little for its
    size (SHIFT_PRICE at the edge of the range), and the answer is the best peak inside the range,
    refined by a parabola through it to a fraction of a step.
    """
    source, target = np.asarray(source_db, float), np.asarray(target_db, float)
    band = np.flatnonzero((GRID_HZ >= FORMANT_BAND_HZ[0]) & (GRID_HZ <= FORMANT_BAND_HZ[1]))
    reach = int(MAX_FORMANT_OCTAVES * GRID_STEPS_PER_OCTAVE)
    shifts = np.arange(-reach, reach + 1)
    scores = np.array([_shape_similarity(source[band], target[band + k]) for k in shifts])
    scores -= SHIFT_PRICE * np.abs(shifts) / reach
    inner = np.arange(1, len(shifts) - 1)
    peaks = inner[(scores[inner] >= scores[inner - 1]) & (scores[inner] >= scores[inner + 1])]
    if len(peaks) == 0:  # monotonic over the whole range: the nearest edge is all there is
        return float(2.0 ** (shifts[int(np.argmax(scores))] / GRID_STEPS_PER_OCTAVE))
    best = int(peaks[np.argmax(scores[peaks])])
    left, mid, right = scores[best - 1 : best + 2]
    curvature = left - 2 * mid + right
    offset = 0.5 * (left - right) / curvature if curvature < 0 else 0.0
    return float(2.0 ** ((shifts[best] + offset) / GRID_STEPS_PER_OCTAVE))


def _shape_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two curves after each loses its straight-line trend."""
    axis = np.arange(len(a))
    a = a - np.polyval(np.polyfit(axis, a, 1), axis)
    b = b - np.polyval(np.polyfit(axis, b, 1), axis)
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


# ---- comparing profiles --------------------------------------------------------------------------


def pitch_distance_st(a: VoiceProfile, b: VoiceProfile) -> float:
    return abs(12 * math.log2(b.f0_median_hz / a.f0_median_hz))


def formant_distance_st(a: VoiceProfile, b: VoiceProfile) -> float:
    """How far apart two speakers' formants are, in semitones of frequency scale: the shift that
    best lays one's average envelope over the other's (`formant_ratio`, what the mapping uses).

    It depends on the F0 the envelopes were smoothed with: an F0 tracker that doubles the pitch
    can lock it half an octave off; `formant_scale_distance_st` is the coarser check that cannot
    lock off. Its accuracy on speakers of known ratios: docs/benchmarks.md."""
    return abs(12 * math.log2(formant_ratio(a.envelope_db, b.envelope_db)))


def formant_scale_distance_st(a: VoiceProfile, b: VoiceProfile) -> float:
    """The difference of two speakers' formant scales, each fitted to the same neutral tube: no
    lock-on risk, but it reads a 1.12 ratio (1.96 st) as 1.37 st on the packaged voice."""
    return abs(12 * math.log2(b.formant_scale / a.formant_scale))


def mapping_between(source: VoiceProfile, target: VoiceProfile) -> VoiceMapping:
    """The change that takes the source voice to the target, each part kept within a range where
    WORLD still sounds like a voice."""
    range_scale = target.f0_range_st / max(source.f0_range_st, 0.5)
    return VoiceMapping(
        f0_pivot_hz=source.f0_median_hz,
        f0_shift_st=_clamp(12 * math.log2(target.f0_median_hz / source.f0_median_hz), MAX_F0_SHIFT_ST),
        f0_range_scale=min(max(range_scale, RANGE_SCALE_LIMITS[0]), RANGE_SCALE_LIMITS[1]),
        formant_ratio=formant_ratio(source.envelope_db, target.envelope_db),
        tilt_db_per_octave=_clamp(target.tilt_db_per_octave - source.tilt_db_per_octave, MAX_TILT_CHANGE),
    )


def _clamp(value: float, limit: float) -> float:
    return min(max(value, -limit), limit)


# ---- conversion ----------------------------------------------------------------------------------


def map_f0(f0: np.ndarray, mapping: VoiceMapping) -> np.ndarray:
    """Shift log-F0 by the difference in median pitch and stretch it around this piece's own median
    (the source's when the piece has too few voiced frames); unvoiced frames (0) stay unvoiced.

    The stretch turns around the piece's centre, not the voice's: one rendering of a clause sits up
    to a semitone and a half off the voice's long-term median, and stretching around the latter
    moved the whole clause by a fraction of that times the scale (measured: a 4.3 semitone shift
    came out as 2.9)."""
    out = np.zeros_like(f0)
    voiced = f0 > 0
    log_f0 = np.log(f0[voiced])
    if len(log_f0) >= MIN_PIVOT_FRAMES or (mapping.f0_pivot_hz is None and len(log_f0)):
        pivot = float(np.median(log_f0))
    else:
        pivot = math.log(mapping.f0_pivot_hz or 1.0)  # (no voiced frame: nothing to map)
    out[voiced] = np.exp(pivot + (log_f0 - pivot) * mapping.f0_range_scale + mapping.f0_shift_st * math.log(2) / 12)
    return out


def envelopes(x: np.ndarray, f0: np.ndarray, times: np.ndarray, rate: int, smoothing_hz: float) -> np.ndarray:
    """WORLD (CheapTrick) spectral envelopes, smoothed at no lower a pitch than the speaker's median.

    In creaky stretches F0 trackers report the long, doubled period (the packaged voice ends phrases
    at 70-90 Hz); an envelope smoothed only that much keeps the real harmonics as ripples, and WORLD
    then re-synthesizes them as a pitch an octave up. Smoothing at the median removes them,
    and formants, a few hundred Hz wide, are untouched by it.
    """
    return pyworld.cheaptrick(x, np.where(f0 > 0, np.maximum(f0, smoothing_hz), 0.0), times, rate)


def shape_envelope(envelope: np.ndarray, rate: int, mapping: VoiceMapping) -> np.ndarray:
    """WORLD envelopes (frames x bins, power) with every frequency scaled by the formant ratio and
    the tilt changed; the tilt is held flat outside the band it was measured in, and each frame
    keeps its power (loudness is not what the mapping changes)."""
    bins = envelope.shape[1]
    position = np.minimum(np.arange(bins) / mapping.formant_ratio, bins - 1)
    low = np.minimum(position.astype(int), bins - 2)
    weight = position - low
    warped = envelope[:, low] * (1 - weight) + envelope[:, low + 1] * weight
    freqs = np.clip(np.arange(bins) * rate / (2 * (bins - 1)), *TILT_BAND_HZ)
    gain_db = mapping.tilt_db_per_octave * np.log2(freqs / TILT_PIVOT_HZ)
    shaped = warped * 10 ** (gain_db / 10)
    shaped *= envelope.sum(axis=1, keepdims=True) / (shaped.sum(axis=1, keepdims=True) + 1e-30)
    return np.ascontiguousarray(shaped)


def convert(samples: np.ndarray, rate: int, mapping: VoiceMapping) -> np.ndarray:
    """One piece of speech through WORLD with the mapping applied, whole (see `convert_blocks`)."""
    return np.concatenate(list(convert_blocks(samples, rate, mapping)))


def convert_blocks(samples: np.ndarray, rate: int, mapping: VoiceMapping) -> Iterator[np.ndarray]:
    """One piece of speech through WORLD with the mapping applied, handed on block by block.

    F0 is tracked over the whole piece (a few ms), the rest runs per block: envelopes and
    aperiodicity of the block's frames, then synthesis, each with MARGIN_FRAMES of context on both
    sides. Blocks meet where the speech is unvoiced when it can be arranged (two syntheses of noise
    cross-fade unheard; of a voice, their pulses would not line up), and cross-fade over 2 x
    JOIN_S. Same length as the input, each frame as loud as before (the envelope change keeps
    its power), soft-limited below full scale, faded in and out over a few ms so pieces join
    cleanly. The blocks depend only on the piece, so they always add up to the same audio."""
    x = np.asarray(samples, np.float64)
    if len(x) == 0:
        return
    hop = rate * FRAME_MS / 1000
    f0 = track(x, rate, FRAME_MS, F0_FLOOR, F0_CEIL)
    f0 = f0[: int(len(x) / hop) + 1]
    times = np.arange(len(f0)) * FRAME_MS / 1000
    target = map_f0(f0, mapping)
    centre = mapping.f0_pivot_hz or (float(np.median(f0[f0 > 0])) if np.any(f0 > 0) else 0.0)
    smoothed = np.where(f0 > 0, np.maximum(f0, centre), 0.0)
    join, fade = int(JOIN_S * rate), _fade(rate, len(x))
    edges = _block_edges(f0)
    held = np.zeros(0)  # the previous block's output past its end, to cross-fade with the next
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        lo, hi = max(a - MARGIN_FRAMES, 0), min(b + MARGIN_FRAMES, len(f0))
        frames = slice(lo, hi)
        envelope = pyworld.cheaptrick(x, smoothed[frames], times[frames], rate)
        aperiodicity = pyworld.d4c(x, f0[frames], times[frames], rate)
        y = pyworld.synthesize(target[frames], shape_envelope(envelope, rate, mapping), aperiodicity, rate, FRAME_MS)
        offset = int(round(lo * hop))  # y[0] is input sample `offset`
        start = 0 if k == 0 else int(round(a * hop)) - join
        end = len(x) if b == len(f0) else int(round(b * hop)) + join
        y = np.pad(y, (0, max(0, end - offset - len(y))))[start - offset : end - offset]
        if len(held):
            ramp = _ramp(len(held))
            y[: len(held)] = held * (1 - ramp) + y[: len(held)] * ramp
        if b < len(f0):
            y, held = y[: len(y) - 2 * join], y[len(y) - 2 * join :].copy()
        piece = _limit(y)
        if k == 0:
            piece[:fade] *= _ramp(fade)
        if b == len(f0):
            out = min(fade, len(piece))
            piece[len(piece) - out :] *= _ramp(out)[::-1]
        yield piece.astype(np.float32)


def _block_edges(f0: np.ndarray) -> list[int]:
    """Frame indices where blocks begin, then the end: the first block short (it is what the
    listener waits for), the others longer; each edge moved to the nearest unvoiced frame within
    EDGE_SEARCH_FRAMES when there is one."""
    edges, n = [0], len(f0)
    while True:
        wanted = edges[-1] + (FIRST_BLOCK_FRAMES if len(edges) == 1 else BLOCK_FRAMES)
        if wanted + MIN_BLOCK_FRAMES >= n:
            return edges + [n]
        near = np.arange(
            max(wanted - EDGE_SEARCH_FRAMES, edges[-1] + MIN_BLOCK_FRAMES),
            min(wanted + EDGE_SEARCH_FRAMES, n - MIN_BLOCK_FRAMES) + 1,
        )
        unvoiced = near[f0[near] == 0]
        edges.append(int(unvoiced[np.argmin(np.abs(unvoiced - wanted))]) if len(unvoiced) else wanted)


def _limit(y: np.ndarray) -> np.ndarray:
    """Samples past LIMIT bend softly toward full scale instead of clipping."""
    over = np.abs(y) > LIMIT
    if over.any():
        y = y.copy()
        y[over] = np.sign(y[over]) * (LIMIT + (1 - LIMIT) * np.tanh((np.abs(y[over]) - LIMIT) / (1 - LIMIT)))
    return y


def _fade(rate: int, length: int) -> int:
    return min(int(EDGE_FADE_S * rate), length // 2)


def _ramp(length: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, length))


class StreamingVoiceMatcher:
    """Matches a stream of reply chunks to a target voice, one chunk at a time.

    Each chunk is a whole clause (the cascade speaks clause by clause, and a clause begins and ends
    in a short silence), so it is re-synthesized on its own, block by block (`pieces`): no
    look-ahead, and the first sound of a chunk waits only for its first block. Concatenating every
    `process` output and `flush` gives the whole reply.
    """

    def __init__(
        self,
        rate: int,
        source: VoiceProfile | None = None,
        target: VoiceProfile | None = None,
        mapping: VoiceMapping | None = None,
    ) -> None:
        self.rate = rate
        if mapping is None:
            if source is None or target is None:
                raise ValueError("voice matching needs a mapping, or both voices' profiles")
            mapping = mapping_between(source, target)
        self.mapping = mapping
        self._held = np.zeros(0, np.float32)

    def pieces(self, chunk: np.ndarray) -> Iterator[np.ndarray]:
        """The converted chunk, block by block, each as soon as it is ready."""
        piece = np.concatenate([self._held, np.asarray(chunk, np.float32)])
        if len(piece) < MIN_PIECE_S * self.rate:
            self._held = piece
            return iter(())
        self._held = np.zeros(0, np.float32)
        return convert_blocks(piece, self.rate, self.mapping)

    def process(self, chunk: np.ndarray) -> np.ndarray:
        return np.concatenate([np.zeros(0, np.float32), *self.pieces(chunk)])

    def flush(self) -> np.ndarray:
        """Whatever is still held (a last chunk too short to convert alone); the matcher is then
        ready for the next reply, so it also serves to drop the rest of a cancelled one."""
        piece, self._held = self._held, np.zeros(0, np.float32)
        return convert(piece, self.rate, self.mapping) if len(piece) else piece
