"""Natural speech for tests and benchmarks: people talking to a voice assistant the way they do.

The companion's own voice reading a clean question is the easy case. Here turns last 1-60 s,
phrases are parted by pauses of 0.3-1.5 s, people hesitate ("um", "uh"), two speakers take turns,
a third voice talks in the background and a room adds its reverberation and noise. Every part is
known (the words, the fillers, where each pause lies, the background alone), so a test can hold a
listener to it.

Voices: the packaged Piper voice at several speeds and pitches, espeak-ng's voices and variants,
and two real people: the 30 s telephone call (narrowband, nothing above 4 kHz) that the
pyannote.audio wheel ships as its sample with a transcript, MIT-licensed with the wheel (a pack,
see packs.txt), cut into its turns by that transcript.

Scripts mark where a speaker stops: `/` is a pause between phrases, `~` a hesitation (a filler
said on its own, with a pause after it, and before it too inside a sentence). Each phrase and each
filler is rendered on its own, trimmed to its speech and brought to one speech level, so the
silence between them is exactly the pause that was planned.

Everything is drawn from a seed. Rendered speech is kept in .cache/natural/ under a hash of what
made it (text, voice, settings), so a second run renders nothing.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from enum import Enum
from pathlib import Path

import numpy as np
import soxr

from core.audio.measure import frame_power
from core.audio.room import EchoPath, RoomConfig, make_rir
from models.registry.atomic import replacing
from core.audio.format import FRAME, RATE

CACHE_DIR = Path(__file__).resolve().parents[1] / ".cache" / "natural"
RENDER_VERSION = 1  # part of every cache key: bump it when rendering changes what a key's audio is

SPEECH_DBFS = -24.0  # RMS of the speech's active frames, every voice alike
ACTIVE_BELOW_PEAK_DB = 30.0  # frames this far under a piece's loudest frame are not its speech
TRIM_BELOW_PEAK_DB = 45.0  # a piece keeps its frames up to this far under its loudest one
TRIM_MARGIN_S = 0.02  # kept either side of a piece's speech: onsets and releases
FILLER_GAIN_DB = -3.0  # a filler is said more softly than the words around it
ROOM_TONE_DBFS = -65.0  # a quiet room's noise floor, under every turn and gap
BREATH_DBFS = -46.0  # RMS of a breath at its loudest, 20+ dB under the speech
BREATH_S = (0.25, 0.45)
BREATH_MIN_PAUSE_S = 0.6  # a breath only fits a pause at least this long
LEAD_S = 0.2  # room tone before the first word and after the last
TONE_BLOCK = RATE  # samples: the room tone's crossfade grid

PAUSE_S = (0.3, 1.5)
HESITATE_P = 0.25  # share of the `/` pauses that become hesitations
BREATH_P = 0.5  # share of the long-enough pauses with a breath in them
FILLERS = ("um", "uh")
OPENING_FILLERS = ("um", "uh", "so")  # a turn may also open with "so"

BACKGROUND_DB = (15.0, 25.0)  # the background voice is this much quieter than the speaker
NOMINAL_GAP_S = 3.0  # a reply's gap, for counting how many turns fill a conversation's minutes
GAP_SPEECH_DELAY_S = 0.3  # background speech in a gap starts this long after the turn ends
FADE_S = 0.05


# --- voices -------------------------------------------------------------------------------------


class Register(Enum):
    """Where a voice's median F0 sits: LOW under 150 Hz, HIGH over it (the tests check each
    voice). Two speakers of different registers are told apart by pitch alone."""

    LOW = "low"
    HIGH = "high"


@dataclass(frozen=True)
class PiperSpeaker:
    """The packaged Piper voice, at a speed (Piper's own length scale, pitch kept) and shifted in
    pitch by Rubber Band (formants kept: the same speaker, higher or lower)."""

    speed: float = 1.0
    semitones: float = 0.0
    register: Register = Register.LOW
    asset: str = "piper-joe-medium"

    @property
    def id(self) -> str:
        return f"piper:{self.asset}@{self.speed:g}x{self.semitones:+g}st"


@dataclass(frozen=True)
class EspeakSpeaker:
    """An espeak-ng voice and variant ("en-us+m3"), its words per minute and pitch (0-99)."""

    voice: str
    wpm: int = 160
    pitch: int = 50
    register: Register = Register.LOW

    @property
    def id(self) -> str:
        return f"espeak:{self.voice}@{self.wpm}wpm/p{self.pitch}"


Speaker = PiperSpeaker | EspeakSpeaker

PIPER_SPEAKERS: tuple[PiperSpeaker, ...] = (
    PiperSpeaker(),
    PiperSpeaker(speed=0.9, semitones=-2.0),
    PiperSpeaker(speed=1.1, semitones=3.0),
)
ESPEAK_SPEAKERS: tuple[EspeakSpeaker, ...] = (
    EspeakSpeaker("en-us+m3", 150, 45),
    EspeakSpeaker("en-gb+m1", 140, 35),
    EspeakSpeaker("en-us+m7", 165, 40),
    EspeakSpeaker("en-gb-scotland+m5", 145, 45),
    EspeakSpeaker("en-us+f2", 155, 60, Register.HIGH),
    EspeakSpeaker("en-gb-x-rp+f4", 150, 65, Register.HIGH),
    EspeakSpeaker("en-us+f5", 160, 55, Register.HIGH),
    EspeakSpeaker("en-029+f1", 145, 60, Register.HIGH),
)
SPEAKERS: tuple[Speaker, ...] = PIPER_SPEAKERS + ESPEAK_SPEAKERS


# --- what people say ----------------------------------------------------------------------------


class Kind(Enum):
    """A turn's length, as the whole turn's audio (lead-in and pauses included)."""

    SHORT = (1.0, 3.0)
    MEDIUM = (4.0, 10.0)
    LONG = (20.0, 60.0)

    @property
    def seconds(self) -> tuple[float, float]:
        return self.value


# Pauses a turn of each kind draws: a short question has no room for a 1.5 s pause.
KIND_PAUSE_S = {Kind.SHORT: (0.3, 0.6), Kind.MEDIUM: PAUSE_S, Kind.LONG: PAUSE_S}
KIND_HESITATE_P = {Kind.SHORT: 0.0, Kind.MEDIUM: HESITATE_P, Kind.LONG: HESITATE_P}

SCRIPTS: dict[Kind, tuple[str, ...]] = {
    Kind.SHORT: (
        "Set a timer / for ten minutes.",
        "What's the weather / like tomorrow?",
        "Turn it down / a little.",
        "No, / the other one.",
        "Play something / quiet.",
        "~ what time is it?",
        "Wait, / say that again.",
        "Is the kitchen light / still on?",
    ),
    Kind.MEDIUM: (
        "Could you remind me / to call my sister ~ on Sunday afternoon?",
        "How long should I boil an egg / if I want the yolk / still a little soft?",
        "What is the difference / between a crocodile / and an alligator?",
        "Add milk, eggs / and ~ a loaf of bread / to the shopping list.",
        "Can you explain / how a heat pump works / in simple words?",
        "Tell me a short joke, ~ something my kids would like.",
        "~ I need a word that means happy / but sounds a bit more formal.",
        "Read me the last message / from my brother, / and then ~ mark it as read.",
    ),
    Kind.LONG: (
        "So I'm planning a trip to Lisbon / in the middle of May, / and I have never been there "
        "before. ~ I will have about four days, / and I don't want to rush / from one museum to "
        "the next. I like walking, / good food / and places where people who live there actually "
        "go. ~ What would you suggest / for the first two days, / and is it worth taking a day "
        "trip to Sintra / or is that mostly for tourists?",
        "~ I'm cooking dinner for six people tonight / and one of them doesn't eat meat. I have "
        "chicken, / a lot of vegetables, / rice / and some chickpeas in the cupboard. I was "
        "thinking of a curry, / but I'm not sure / I can make one pot / that works for everybody. "
        "Could you give me a plan / where the base is the same / and I only add the chicken at "
        "the end / for the people who want it?",
        "Okay, / I need help with an email to my landlord. The heating has been broken / for "
        "almost two weeks / and I have asked him twice already. ~ I want to sound polite / but "
        "firm, / and I want to mention / that the contract says repairs like this / should be "
        "done within a few days. Can you write a short draft / that I can read back / and change "
        "before I send it?",
        "Let me tell you what happened this morning, / because I'm still a bit confused. I went "
        "to the bank / to pay in a cheque, / and the machine took it / but never printed a "
        "receipt. Then the man at the counter said / it might take three working days / to show "
        "up in my account, / or it might not show up at all / if the machine jammed. ~ I have a "
        "photo of the cheque / on my phone, / but nothing else. What should I do first, / and ~ "
        "who should I call / if the money has not arrived by Friday?",
        "~ I started learning the piano / about three months ago, / mostly with videos. My right "
        "hand is fine now, / but as soon as the left hand / plays something different / I lose "
        "the rhythm completely. I practise for twenty minutes every evening, ~ sometimes a bit "
        "longer at the weekend. Is it better to practise the hands separately / for a few more "
        "weeks, / or should I keep trying both together / even if it sounds terrible?",
    ),
}

# What a voice in the background says: someone else's conversation, or the radio.
BACKGROUND_SCRIPTS: tuple[str, ...] = (
    "and then she told me / the train was late again, / so we just walked home through the park.",
    "The meeting moved to Thursday / because half the team / is away this week.",
    "I don't think the shop on the corner / opens before ten / on a Sunday.",
    "He said the new bridge / will take another two years / to finish.",
    "Traffic is slow on the ring road / after an accident / near the second exit.",
    "Did you see the match last night? ~ I couldn't believe / the second half.",
)


# --- the turn's plan: what is said and where it stops -------------------------------------------


@dataclass(frozen=True)
class Say:
    text: str
    filler: bool = False


@dataclass(frozen=True)
class Pause:
    seconds: float
    breath: bool = False


Step = Say | Pause
MARKS = ("/", "~")


def parse_script(script: str) -> list[str]:
    """Phrases and marks in order; a mark stands between two phrases, and `~` may also open."""
    tokens = [t.strip() for t in re.split(r"([/~])", script) if t.strip()]
    if not tokens:
        raise ValueError("empty script")
    for i, token in enumerate(tokens):
        if token in MARKS:
            after_words = (i > 0 and tokens[i - 1] not in MARKS) or (i == 0 and token == "~")
            before_words = i + 1 < len(tokens) and tokens[i + 1] not in MARKS
            if not (after_words and before_words):
                raise ValueError(f"a mark must stand between two phrases: {script!r}")
    return tokens


def said_as(phrase: str) -> str:
    """The text a voice is given for a phrase: one that stops inside a sentence ends in a comma,
    so it is said with the level or rising pitch of a sentence that goes on, not the falling end
    of one that is over (a phrase said alone sounds finished, and a speaker pausing mid-sentence
    does not)."""
    return phrase if phrase[-1] in ".?!,;:" else phrase + ","


def words_of(script: str) -> str:
    """The words a script says, marks left out: the reference a recognizer is held to."""
    return " ".join(t for t in parse_script(script) if t not in MARKS)


def plan_turn(
    script: str, rng: np.random.Generator, pause_s: tuple[float, float] = PAUSE_S, hesitate_p: float = HESITATE_P
) -> list[Step]:
    """What is said and where the speaker stops, from the script and the generator alone."""
    steps: list[Step] = []

    def pause() -> Pause:
        seconds = float(rng.uniform(*pause_s))
        return Pause(seconds, breath=seconds >= BREATH_MIN_PAUSE_S and rng.random() < BREATH_P)

    for i, token in enumerate(parse_script(script)):
        if token == "~" and i == 0:
            steps += [Say(str(rng.choice(OPENING_FILLERS)), filler=True), pause()]
        elif token == "~" or (token == "/" and rng.random() < hesitate_p):
            steps += [pause(), Say(str(rng.choice(FILLERS)), filler=True), pause()]
        elif token == "/":
            steps.append(pause())
        else:
            steps.append(Say(token))
    return steps


# --- rendering speech ------------------------------------------------------------------------


def render(texts: Sequence[str], speaker: Speaker, cache: Path = CACHE_DIR) -> dict[str, np.ndarray]:
    """Each of `texts` said by `speaker`: 16 kHz mono float32, trimmed to its speech, at
    SPEECH_DBFS. Rendered together and kept together in `cache` under the hash of what made them:
    Piper's variation comes from its session's generator, which draws for every text in turn, so a
    text sounds the same only beside the same others (a turn renders its phrases and the fillers)."""
    if isinstance(texts, str):
        raise TypeError("render takes a sequence of texts, not one string")
    texts = tuple(dict.fromkeys(texts))
    key = render_key(texts, speaker)
    path = Path(cache) / f"{key}.npz"
    try:
        with np.load(path) as kept:
            return {text: kept[f"p{i}"] for i, text in enumerate(texts)}
    except (OSError, ValueError, KeyError, EOFError):
        pass
    if isinstance(speaker, PiperSpeaker):
        raw = synthesize_piper(texts, speaker, seed=int(key[:8], 16))
    else:
        raw = [synthesize_espeak(text, speaker) for text in texts]
    pieces = {
        text: to_level(trim(soxr.resample(audio, rate, RATE).astype(np.float32)), SPEECH_DBFS)
        for text, (audio, rate) in zip(texts, raw)
    }
    store(path, list(pieces.values()))
    return pieces


def render_key(texts: Sequence[str], speaker: Speaker) -> str:
    what = {
        "version": RENDER_VERSION,
        "texts": list(texts),
        "kind": type(speaker).__name__,
        "speaker": {k: v.value if isinstance(v, Enum) else v for k, v in asdict(speaker).items()},
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:24]


def store(path: Path, arrays: list[np.ndarray]) -> None:
    """Writes the file whole or not at all: concurrent test runs share the cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        with open(tmp, "xb") as f:
            np.savez(f, **{f"p{i}": a for i, a in enumerate(arrays)})


def synthesize_espeak(text: str, speaker: EspeakSpeaker) -> tuple[np.ndarray, int]:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng not found: install it (bash scripts/setup.sh --test does)")
    done = subprocess.run(
        [exe, "-v", speaker.voice, "-s", str(speaker.wpm), "-p", str(speaker.pitch), "--stdout", "--stdin"],
        input=text.encode(),
        capture_output=True,
        timeout=60,
    )
    if done.returncode != 0:
        raise RuntimeError(f"espeak-ng failed on {speaker.voice}: {done.stderr.decode(errors='replace').strip()}")
    return pcm16_from_wav(done.stdout)


def pcm16_from_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Mono 16-bit PCM WAV bytes as float32 and their rate. The data chunk runs to the end of the
    bytes whatever size it declares: written to a pipe, a WAV's sizes are placeholders."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a WAV stream")
    pos, rate = 12, None
    while pos + 8 <= len(data):
        name, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = data[pos + 8 :]
        if name == b"fmt ":
            fmt, channels, rate = (int.from_bytes(body[a:b], "little") for a, b in ((0, 2), (2, 4), (4, 8)))
            bits = int.from_bytes(body[14:16], "little")
            if (fmt, channels, bits) != (1, 1, 16):
                raise ValueError(f"expected mono 16-bit PCM, got format {fmt}, {channels} channels, {bits} bits")
        elif name == b"data":
            if rate is None:
                raise ValueError("WAV data before its format")
            pcm = np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2")
            return (pcm / 32768.0).astype(np.float32), rate
        pos += 8 + size + size % 2
    raise ValueError("WAV stream without data")


@functools.lru_cache(maxsize=None)
def piper_dir(asset: str) -> Path:
    from models.registry import ModelStore

    return ModelStore().ensure(asset)


@functools.lru_cache(maxsize=None)
def calibrate_piper(asset: str) -> None:
    """Times the voice's speeds (once, then kept beside it) in a session of its own, so that the
    seeded session that renders draws its noise for the texts and nothing else."""
    from models.cascade.tts import PiperTts

    PiperTts(piper_dir(asset), threads=1).speed_curve()


def synthesize_piper(texts: Sequence[str], speaker: PiperSpeaker, seed: int) -> list[tuple[np.ndarray, int]]:
    """Piper draws the voice's variation from its ONNX session's generator, seeded when the
    session is made: a session made for these texts from their own seed says them the same way
    each time. This sets onnxruntime's global seed; code that wants its own seeds sets them itself
    before it loads a model."""
    import onnxruntime

    from core.style.prosody import apply_prosody
    from models.cascade.tts import PiperTts

    if speaker.speed != 1.0:
        calibrate_piper(speaker.asset)
    onnxruntime.set_seed(seed)
    tts = PiperTts(piper_dir(speaker.asset), threads=1)
    out = []
    for text in texts:
        audio = np.concatenate(list(tts.synthesize(text, speed=speaker.speed)))
        if speaker.semitones:
            audio = apply_prosody(audio, tts.rate, 1.0, speaker.semitones)
        out.append((audio, tts.rate))
    return out


def trim(audio: np.ndarray) -> np.ndarray:
    """The piece from its first to its last frame of speech, with TRIM_MARGIN_S either side."""
    power = frame_power(audio, FRAME)
    if not len(power) or power.max() <= 0:
        raise ValueError("the voice said nothing")
    loud = np.flatnonzero(power >= power.max() * 10 ** (-TRIM_BELOW_PEAK_DB / 10))
    margin = int(TRIM_MARGIN_S * RATE)
    return audio[max(0, loud[0] * FRAME - margin) : min(len(audio), (loud[-1] + 1) * FRAME + margin)]


def active_rms(audio: np.ndarray) -> float:
    """RMS over the frames within ACTIVE_BELOW_PEAK_DB of the loudest: the level of the speech
    itself, whatever pauses it holds."""
    power = frame_power(audio, FRAME)
    if not len(power) or power.max() <= 0:
        return 0.0
    active = power >= power.max() * 10 ** (-ACTIVE_BELOW_PEAK_DB / 10)
    return float(np.sqrt(power[active].mean()))


def to_level(audio: np.ndarray, dbfs: float) -> np.ndarray:
    return (audio * (10 ** (dbfs / 20) / active_rms(audio))).astype(np.float32)


# --- sounds between the words -------------------------------------------------------------------


def shaped_noise(n: int, rng: np.random.Generator, band: tuple[float, float], tilt_db_per_octave: float) -> np.ndarray:
    """Unit-RMS noise within `band` Hz, its spectrum tilted by `tilt_db_per_octave` (negative:
    falling towards the highs)."""
    if n == 0:
        return np.zeros(0, np.float32)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    hz = np.fft.rfftfreq(n, 1 / RATE)
    inside = (hz >= band[0]) & (hz <= band[1])
    gain = np.zeros_like(hz)
    gain[inside] = (hz[inside] / band[0]) ** (tilt_db_per_octave / (20 * np.log10(2)))
    noise = np.fft.irfft(spectrum * gain, n)
    rms = np.sqrt(np.mean(noise**2))
    return (noise / rms if rms > 0 else noise).astype(np.float32)


def room_tone(n: int, seed: tuple[int, ...], dbfs: float = ROOM_TONE_DBFS) -> np.ndarray:
    """A quiet room's noise: pink-ish (-3 dB per octave) from 40 Hz up. Made of pieces two
    TONE_BLOCKs long, each from its own seed, crossfaded by power-complementary windows: the
    level stays even, and a longer stretch from the same seed starts with a shorter one's samples."""
    block = TONE_BLOCK
    window = np.sin(np.pi * (np.arange(2 * block) + 0.5) / (2 * block)).astype(np.float32)
    count = n // block + 2
    out = np.zeros((count + 1) * block, np.float32)
    for k in range(count):
        piece = shaped_noise(2 * block, np.random.default_rng((*seed, k)), (40.0, RATE / 2), -3.0)
        out[k * block : (k + 2) * block] += piece * window
    return out[block : block + n] * np.float32(10 ** (dbfs / 20))


def breath(rng: np.random.Generator) -> np.ndarray:
    """An in-breath: band-limited noise swelling and fading over 0.25-0.45 s."""
    n = int(rng.uniform(*BREATH_S) * RATE)
    envelope = np.sin(np.pi * np.arange(n) / n) ** 2
    return (
        shaped_noise(n, rng, (300.0, 4000.0), -4.0) * envelope.astype(np.float32) * np.float32(10 ** (BREATH_DBFS / 20))
    )


# --- turns --------------------------------------------------------------------------------------

Span = tuple[int, int]  # [start, end) in samples at RATE


@dataclass(frozen=True, eq=False)
class Turn:
    """One speaker's turn: what the microphone hears, and what is known about it."""

    audio: np.ndarray  # 16 kHz mono float32: speech, pauses, fillers, background, room
    text: str  # the words said, fillers left out: the reference for recognition
    spoken: str  # everything said in order, fillers included
    speaker: str  # the voice's id
    pauses: tuple[Span, ...]  # the pauses inside the turn, between two pieces of speech
    speech: tuple[Span, ...]  # each said piece (phrase or filler), trimmed to its speech
    script: str = ""  # the marked text it was made from ("" for a recording)
    background: np.ndarray | None = None  # the background voice alone, as mixed into `audio`

    @property
    def seconds(self) -> float:
        return len(self.audio) / RATE


def natural_turn(
    script: str,
    speaker: Speaker,
    rng: np.random.Generator,
    *,
    pause_s: tuple[float, float] = PAUSE_S,
    hesitate_p: float = HESITATE_P,
    noise_dbfs: float | None = ROOM_TONE_DBFS,
    cache: Path = CACHE_DIR,
) -> Turn:
    """`script` (with its `/` and `~` marks) said by `speaker` as a person would: pauses of
    `pause_s` between phrases, fillers, breaths, and the room's tone at `noise_dbfs` (None: none)."""
    steps = plan_turn(script, rng, pause_s, hesitate_p)
    phrases = [t for t in parse_script(script) if t not in MARKS]
    rendered = render([*map(said_as, phrases), *OPENING_FILLERS, *FILLERS], speaker, cache)
    # One seed for all the noise, drawn before any is made: the next turn's plan depends on the
    # generator and the seed alone, not on how long the voice took to say this one.
    noise_seed = int(rng.integers(2**63))
    noise = np.random.default_rng(noise_seed)
    lead = int(LEAD_S * RATE)
    pieces, pauses, speech, pos = [np.zeros(lead, np.float32)], [], [], lead
    for step in steps:
        if isinstance(step, Say):
            audio = rendered[step.text if step.filler else said_as(step.text)]
            if step.filler:
                audio = audio * np.float32(10 ** (FILLER_GAIN_DB / 20))
            speech.append((pos, pos + len(audio)))
        else:
            audio = np.zeros(int(round(step.seconds * RATE)), np.float32)
            if step.breath:  # just before the next words, as people breathe in to speak
                air = breath(noise)
                end = len(audio) - int(0.1 * RATE)
                audio[max(0, end - len(air)) : end] += air[max(0, len(air) - end) :]
            pauses.append((pos, pos + len(audio)))
        pieces.append(audio)
        pos += len(audio)
    pieces.append(np.zeros(lead, np.float32))
    dry = np.concatenate(pieces)
    tone = room_tone(len(dry), (noise_seed, 1), noise_dbfs) if noise_dbfs is not None else 0.0
    return Turn(
        audio=dry + tone,
        text=words_of(script),
        spoken=" ".join(s.text for s in steps if isinstance(s, Say)),
        speaker=speaker.id,
        pauses=tuple(pauses),
        speech=tuple(speech),
        script=script,
    )


def with_background(
    turn: Turn, other: np.ndarray, rng: np.random.Generator, below_db: tuple[float, float] = BACKGROUND_DB
) -> Turn:
    """`turn` with another voice under it, `below_db` quieter than the speaker, starting anywhere
    in the turn (and cut off where the turn ends)."""
    quiet = quieter(other, rng, below_db)
    start = int(rng.integers(0, max(1, len(turn.audio) - RATE)))
    background = np.zeros_like(turn.audio)
    part = faded(quiet[: len(turn.audio) - start])
    background[start : start + len(part)] = part
    return replace(turn, audio=turn.audio + background, background=background)


def quieter(audio: np.ndarray, rng: np.random.Generator, below_db: tuple[float, float] = BACKGROUND_DB) -> np.ndarray:
    """A voice at SPEECH_DBFS brought `below_db` (drawn) under the speaker."""
    return audio * np.float32(10 ** (-float(rng.uniform(*below_db)) / 20))


def faded(audio: np.ndarray, seconds: float = FADE_S) -> np.ndarray:
    """Raised-cosine ends, so a voice cut off mid-word does not click."""
    n = min(int(seconds * RATE), len(audio) // 2)
    if n == 0:
        return audio
    ramp = (0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)).astype(np.float32)
    out = audio.copy()
    out[:n] *= ramp
    out[len(out) - n :] *= ramp[::-1]
    return out


def reverberate(audio: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """`audio` as a microphone across the room hears it; same length (the tail past it is cut)."""
    return EchoPath(rir).process(audio)


def far_field(turn: Turn, rir: np.ndarray) -> Turn:
    """The turn (and its background voice) heard across a room; pauses stay where they were, the
    room's reverberation spills into their first tenths of a second."""
    background = None if turn.background is None else reverberate(turn.background, rir)
    return replace(turn, audio=reverberate(turn.audio, rir), background=background)


def background_speech(speaker: Speaker, rng: np.random.Generator, cache: Path = CACHE_DIR) -> np.ndarray:
    """A background voice's words (a script of BACKGROUND_SCRIPTS said naturally), dry, at
    SPEECH_DBFS and without room tone: the caller sets how much quieter it is."""
    script = str(rng.choice(BACKGROUND_SCRIPTS))
    turn = natural_turn(script, speaker, rng, noise_dbfs=None, cache=cache)
    return turn.audio[turn.speech[0][0] : turn.speech[-1][1]]


# --- conversations ------------------------------------------------------------------------------

FAR_ROOM = RoomConfig(delay_ms=0.0, rt60_s=0.4, direct_to_reverb_db=3.0, noise_dbfs=-60.0)
KIND_WEIGHTS = {Kind.SHORT: 0.35, Kind.MEDIUM: 0.45, Kind.LONG: 0.2}
UNDER_TURN_P = 0.25  # share of turns with the background voice under them
IN_GAP_P = 0.3  # share of gaps where the background voice talks


@dataclass(frozen=True, eq=False)
class Conversation:
    """Two speakers taking turns. The gaps between turns are the assistant's to fill: `gap`
    makes the audio of a gap of any length (the room, and the background voice when it talks
    there), `lay_out` puts turns and gaps on one timeline."""

    turns: tuple[Turn, ...]
    gap_speech: tuple[np.ndarray | None, ...]  # per gap (after turn i): the background voice, quieted
    seed: int
    noise_dbfs: float
    room: RoomConfig | None = None

    def gap(self, index: int, seconds: float) -> np.ndarray:
        """The `seconds` of audio between turn `index` and the next, the same whatever was asked
        before. A longer gap starts as a shorter one does, up to where the shorter one fades out
        the background voice it cuts off (FADE_S)."""
        n = int(round(seconds * RATE))
        audio = np.zeros(n, np.float32)
        other = self.gap_speech[index] if index < len(self.gap_speech) else None
        start = int(GAP_SPEECH_DELAY_S * RATE)
        if other is not None and n > start:
            if self.room is not None:
                other = reverberate(other, make_rir(self.room, RATE))
            part = faded(other[: n - start])
            audio[start : start + len(part)] = part
        return audio + room_tone(n, (self.seed, 1, index), self.noise_dbfs)


@dataclass(frozen=True, eq=False)
class Timeline:
    audio: np.ndarray
    spans: tuple[Span, ...]  # where each turn lies on the timeline


def lay_out(conversation: Conversation, gaps_s: float | Sequence[float]) -> Timeline:
    """The turns one after another with these gaps between them (one length for all, or one per
    gap: len(turns) - 1)."""
    count = len(conversation.turns) - 1
    gaps = [float(gaps_s)] * count if isinstance(gaps_s, (int, float)) else [float(g) for g in gaps_s]
    if len(gaps) != count:
        raise ValueError(f"{len(conversation.turns)} turns need {count} gaps, got {len(gaps)}")
    pieces, spans, pos = [], [], 0
    for i, turn in enumerate(conversation.turns):
        pieces.append(turn.audio)
        spans.append((pos, pos + len(turn.audio)))
        pos += len(turn.audio)
        if i < count:
            gap = conversation.gap(i, gaps[i])
            pieces.append(gap)
            pos += len(gap)
    return Timeline(np.concatenate(pieces), tuple(spans))


def pick_speakers(rng: np.random.Generator) -> tuple[Speaker, Speaker, Speaker]:
    """Two speakers from different registers (so they differ in pitch), in either order, and a
    third voice for the background, unlike both."""
    low = [s for s in SPEAKERS if s.register is Register.LOW]
    high = [s for s in SPEAKERS if s.register is Register.HIGH]
    a, b = low[int(rng.integers(len(low)))], high[int(rng.integers(len(high)))]
    if rng.random() < 0.5:
        a, b = b, a
    others = [s for s in SPEAKERS if s not in (a, b)]
    return a, b, others[int(rng.integers(len(others)))]


def natural_conversation(
    minutes: float | None = None,
    n_turns: int | None = None,
    seed: int = 0,
    *,
    background: bool = True,
    room: RoomConfig | None = None,
    cache: Path = CACHE_DIR,
) -> Conversation:
    """Two speakers alternating, turns of 1-60 s; with `background`, a third voice 15-25 dB
    quieter talks under some turns and in some gaps; with `room` (FAR_ROOM is a living room a few
    metres away) every voice is heard through its reverberation and its noise.
    Give `minutes` (counting NOMINAL_GAP_S per gap) or `n_turns`."""
    if (minutes is None) == (n_turns is None):
        raise ValueError("give minutes or n_turns, not both")
    rng = np.random.default_rng(seed)
    first, second, other = pick_speakers(rng)
    speakers = (first, second)
    third = other if background else None
    noise_dbfs = room.noise_dbfs if room is not None else ROOM_TONE_DBFS
    rir = make_rir(room, RATE) if room is not None else None
    kinds, weights = list(KIND_WEIGHTS), list(KIND_WEIGHTS.values())
    turns: list[Turn] = []
    gap_speech: list[np.ndarray | None] = []
    elapsed = 0.0
    while (len(turns) < n_turns) if n_turns is not None else (elapsed < minutes * 60):
        kind = kinds[int(rng.choice(len(kinds), p=weights))]
        script = str(rng.choice(SCRIPTS[kind]))
        turn = natural_turn(
            script,
            speakers[len(turns) % 2],
            rng,
            pause_s=KIND_PAUSE_S[kind],
            hesitate_p=KIND_HESITATE_P[kind],
            noise_dbfs=noise_dbfs,
            cache=cache,
        )
        if third is not None and rng.random() < UNDER_TURN_P:
            turn = with_background(turn, background_speech(third, rng, cache), rng)
        if rir is not None:
            turn = far_field(turn, rir)
        turns.append(turn)
        talks = third is not None and rng.random() < IN_GAP_P
        gap_speech.append(quieter(background_speech(third, rng, cache), rng) if talks else None)
        elapsed += turn.seconds + NOMINAL_GAP_S
    return Conversation(tuple(turns), tuple(gap_speech[:-1]), seed, noise_dbfs, room)


# --- two real people ----------------------------------------------------------------------------

RECORDING_PACK = "pyannote.audio"  # its wheel ships a telephone call between two people
RECORDING_FILES = ("pyannote/audio/sample/sample.wav", "pyannote/audio/sample/sample.stm")


@dataclass(frozen=True)
class Segment:
    speaker: str
    start: float  # seconds
    end: float
    text: str


def parse_stm(text: str) -> list[Segment]:
    """NIST STM lines: file, channel, speaker, start, end, words."""
    segments = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 5 and not line.startswith(";;"):
            segments.append(Segment(fields[2], float(fields[3]), float(fields[4]), " ".join(fields[5:])))
    return sorted(segments, key=lambda s: s.start)


def recording() -> tuple[np.ndarray, list[Segment]]:
    """The pack's recording (16 kHz mono float32) and its transcript."""
    from core.audio.io import load_voice

    try:
        dist = importlib.metadata.distribution(RECORDING_PACK)
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError(
            f"the {RECORDING_PACK} pack is not installed: bash scripts/setup.sh installs the packs in packs.txt"
        ) from None
    wav, stm = (Path(dist.locate_file(f)) for f in RECORDING_FILES)
    return load_voice(wav), parse_stm(stm.read_text(encoding="utf-8"))


def recorded_turns(margin_s: float = 0.15) -> list[Turn]:
    """The call cut into turns: each run of one person's segments, with `margin_s` either side.
    The other person can be heard where they overlap, as on any call."""
    audio, segments = recording()
    runs: list[list[Segment]] = []
    for segment in segments:
        if runs and runs[-1][-1].speaker == segment.speaker:
            runs[-1].append(segment)
        else:
            runs.append([segment])
    turns = []
    for run in runs:
        start = max(0, int((run[0].start - margin_s) * RATE))
        end = min(len(audio), int((run[-1].end + margin_s) * RATE))
        spans = tuple((int(s.start * RATE) - start, int(s.end * RATE) - start) for s in run)
        gaps = tuple((a[1], b[0]) for a, b in zip(spans, spans[1:]) if (b[0] - a[1]) >= PAUSE_S[0] * RATE)
        text = " ".join(s.text for s in run)
        turns.append(
            Turn(
                audio=audio[start:end].copy(),
                text=text,
                spoken=text,
                speaker=f"recorded:{run[0].speaker}",
                pauses=gaps,
                speech=spans,
            )
        )
    return turns


# --- the standard set ---------------------------------------------------------------------------

# (kind, with a background voice) of each synthesized turn in `natural_set`.
SET_LAYOUT: tuple[tuple[Kind, bool], ...] = (
    (Kind.SHORT, False),
    (Kind.SHORT, False),
    (Kind.SHORT, True),
    (Kind.SHORT, False),
    (Kind.SHORT, False),
    (Kind.MEDIUM, False),
    (Kind.MEDIUM, True),
    (Kind.MEDIUM, False),
    (Kind.MEDIUM, False),
    (Kind.MEDIUM, True),
    (Kind.MEDIUM, False),
    (Kind.LONG, False),
    (Kind.LONG, True),
    (Kind.LONG, False),
)


def natural_set(seed: int = 0, recorded: bool = True, cache: Path = CACHE_DIR) -> list[Turn]:
    """A fixed mix for tests and benchmarks: 5 short, 6 medium and 3 long turns, each script at
    most once per kind, voices taken in turn from a seeded order of every voice, 4 of them with a
    background voice; then (with `recorded`) the real people's turns."""
    rng = np.random.default_rng(seed)
    order = [SPEAKERS[i] for i in rng.permutation(len(SPEAKERS))]
    scripts = {kind: [SCRIPTS[kind][i] for i in rng.permutation(len(SCRIPTS[kind]))] for kind in Kind}
    turns = []
    for i, (kind, noisy) in enumerate(SET_LAYOUT):
        speaker = order[i % len(order)]
        turn = natural_turn(
            scripts[kind].pop(), speaker, rng, pause_s=KIND_PAUSE_S[kind], hesitate_p=KIND_HESITATE_P[kind], cache=cache
        )
        if noisy:
            other = order[(i + len(order) // 2) % len(order)]
            turn = with_background(turn, background_speech(other, rng, cache), rng)
        turns.append(turn)
    return turns + (recorded_turns() if recorded else [])
