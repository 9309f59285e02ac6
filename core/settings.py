"""The user's settings and conversation history on disk.

Both live in the user's folders (platformdirs, or $VOICE_COMPANION_DATA), carry a schema name and
version, and are written atomically. A file that cannot be read is never overwritten in place: it
is moved aside as `<name>.corrupt-<time>` and replaced by defaults, and the caller gets a notice to
show, so nothing is silently lost (models/registry/userfile.py).

The data folder is the user's alone: made 0700, every file in it 0600 (models/registry/atomic.py);
`UserFiles.secure` tightens a folder an older version made and removes temp files a killed process
left, which can hold a voice recording.
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Any
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from core.engines import DEFAULT_ASR, DEFAULT_ENGINE, SETTINGS_ENGINES
from core.events import Mode
from core.turns import TurnConfig
from core.style.emotion import EMOTIONS
from core.style.presets import MAX_NAME, MAX_PERSONA, PITCH_RANGE, SPEED_RANGE
from models.registry.atomic import make_private_dir, remove_stale_temps, write_json
from models.registry.datadir import default_data_dir, models_dir
from models.registry.userfile import load_or_recover

log = logging.getLogger(__name__)

SETTINGS_SCHEMA = "voice-companion/settings"
HISTORY_SCHEMA = "voice-companion/history"
VERSION = 1
MODES = tuple(Mode)
COMPUTE = ("auto", "cuda", "metal", "cpu")
SENSITIVITY_RANGE = (0.1, 0.9)
END_OF_TURN_RANGE = (200, 3000)
MAX_TEXT = 200  # device, model, key and file names
HISTORY_KEPT = 500  # entries on disk; the engine's own token budget decides what it reads
MAX_ENTRY_TEXT = 20_000  # characters in one history line
MAX_HISTORY_BYTES = 32 << 20  # 500 entries of the longest text, JSON-escaped, fit well below


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    mode: str = Mode.ALWAYS_LISTENING.value
    push_to_talk_key: str = "Space"
    input_device: str | None = None  # None: the system default
    output_device: str | None = None
    echo_cancellation: bool = True
    noise_suppression: bool = True
    gain_control: bool = False
    vad_sensitivity: float = 0.5  # 0.1 (needs clear speech) .. 0.9 (hears whispers)
    end_of_turn_ms: int = TurnConfig.end_of_turn_ms  # the longest wait: a finished-sounding turn ends sooner
    engine: str = DEFAULT_ENGINE
    chat_model: str = "qwen2.5-coder-0.5b-instruct-q4"
    asr_model: str = DEFAULT_ASR  # the speech recognizer (cascade engine)
    compute: str = "auto"
    persona: str = ""
    preset: str = "Neutral"
    emotion: str | None = None  # None: the preset's own
    speed: float | None = None
    pitch: float | None = None
    voice_reference: str | None = None  # clip file name in the voices folder (overrides the preset)
    global_push_to_talk: bool = False  # the key works while other windows have the focus (X11)
    close_to_tray: bool = True  # closing the window keeps the companion running in the tray
    tray_notice_shown: bool = False  # the one-time "still running in the tray" notice was shown
    start_at_login: bool = False  # an XDG autostart entry (core/autostart.py)

    def turn_config(self) -> TurnConfig:
        # Sensitivity is the inverse of the speech probability that counts as voiced.
        return TurnConfig(
            threshold=round(1.0 - self.vad_sensitivity, 3),
            end_of_turn_ms=self.end_of_turn_ms,
            barge_in_threshold=round(1.0 - self.vad_sensitivity, 3),
        )

    def to_json(self) -> dict[str, object]:
        return {"schema": SETTINGS_SCHEMA, "version": VERSION, **asdict(self)}


def parse_settings(data: object) -> Settings:
    """Validate a decoded settings file; unknown keys are ignored (a newer version's additions)."""
    if not isinstance(data, dict) or data.get("schema") != SETTINGS_SCHEMA:
        raise SettingsError("not a Voice Companion settings file")
    if data.get("version") != VERSION:
        raise SettingsError(f"settings version {data.get('version')!r} is not {VERSION}")
    values: dict[str, Any] = {}
    defaults = Settings()
    for f in fields(Settings):
        if f.name not in data:
            continue
        value, default = data[f.name], getattr(defaults, f.name)
        optional = default is None or f.name in ("emotion", "speed", "pitch")
        if value is None and optional:
            values[f.name] = None
            continue
        kind = type(default) if default is not None else (float if f.name in ("speed", "pitch") else str)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise SettingsError(f"setting '{f.name}' must be {kind.__name__}, not {value!r}")
        values[f.name] = value
    settings = replace(defaults, **values)
    check_settings(settings)
    return settings


def check_settings(s: Settings) -> None:
    if s.mode not in MODES:
        raise SettingsError(f"mode must be one of {', '.join(MODES)}")
    if s.engine not in SETTINGS_ENGINES:
        raise SettingsError(f"engine must be one of {', '.join(SETTINGS_ENGINES)}")
    if s.compute not in COMPUTE:
        raise SettingsError(f"compute must be one of {', '.join(COMPUTE)}")
    if not SENSITIVITY_RANGE[0] <= s.vad_sensitivity <= SENSITIVITY_RANGE[1]:
        raise SettingsError(f"vad_sensitivity must be within {SENSITIVITY_RANGE}")
    if not END_OF_TURN_RANGE[0] <= s.end_of_turn_ms <= END_OF_TURN_RANGE[1]:
        raise SettingsError(f"end_of_turn_ms must be within {END_OF_TURN_RANGE} ms")
    for name in ("push_to_talk_key", "input_device", "output_device", "chat_model", "voice_reference"):
        value = getattr(s, name)
        if value is not None and len(value) > MAX_TEXT:
            raise SettingsError(f"{name} must be at most {MAX_TEXT} characters")
    if len(s.preset) > MAX_NAME:
        raise SettingsError(f"preset must be a name of at most {MAX_NAME} characters")
    if len(s.persona) > MAX_PERSONA:
        raise SettingsError(f"persona must be at most {MAX_PERSONA} characters")
    if s.emotion is not None and s.emotion not in EMOTIONS:
        raise SettingsError(f"emotion must be one of {', '.join(EMOTIONS)}")
    for name, (lo, hi) in (("speed", SPEED_RANGE), ("pitch", PITCH_RANGE)):
        value = getattr(s, name)
        if value is not None and not (math.isfinite(value) and lo <= value <= hi):
            raise SettingsError(f"{name} must be within {lo:g} to {hi:g}")
    if s.voice_reference is not None and not is_plain_file_name(s.voice_reference):
        # The clip and the profile written beside it must stay inside the voices folder.
        raise SettingsError("voice_reference must be the name of a clip in the voices folder")


def is_plain_file_name(name: str) -> bool:
    """A name that stays inside the folder it is joined to: no separators, not "." or "..", no
    control characters."""
    return (
        bool(name)
        and name not in (".", "..")
        and "/" not in name
        and "\\" not in name
        and os.sep not in name
        and not any(ord(c) < 32 for c in name)
    )


@dataclass(frozen=True)
class HistoryEntry:
    role: str  # "user" or "assistant"
    text: str
    interrupted: bool = False
    latency_ms: float | None = None  # assistant lines: end of the user's speech -> first sound
    at: float = field(default_factory=time.time)


class UserFiles:
    """Where the app keeps what belongs to the user."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_data_dir()
        self.settings_file = self.root / "settings.json"
        self.history_file = self.root / "history.json"
        self.presets = self.root / "presets"
        self.voices = self.root / "voices"

    def folder(self, folder: Path) -> Path:
        """`folder` (the root or one inside it), made 0700 if it is new."""
        make_private_dir(self.root)
        return make_private_dir(folder)

    def secure(self) -> None:
        """At start-up: the data folder and the user's files in it lose any access by others (an
        older version made them 0755 and 0644; the owner's own bits are kept), and temp files
        left by a process that was killed mid-write are removed. Model files are left alone."""
        if not self.root.is_dir():
            return
        models = models_dir(self.root)
        for folder in (self.root, self.presets, self.voices, self.root / "logs", models):
            if not folder.is_dir():
                continue
            _owner_only(folder)
            remove_stale_temps(folder)
            if folder == models:
                continue
            for path in folder.iterdir():
                if path.is_file() and not path.is_symlink():
                    _owner_only(path)
        for name in ("user_assets.json", "hub_pins.json"):
            if (models / name).is_file():
                _owner_only(models / name)

    def load_settings(self) -> tuple[Settings, str | None]:
        return load_or_recover(self.settings_file, parse_settings, Settings())

    def save_settings(self, settings: Settings) -> None:
        check_settings(settings)
        self.folder(self.root)
        write_json(self.settings_file, settings.to_json())

    def load_history(self) -> tuple[list[HistoryEntry], str | None]:
        return load_or_recover(self.history_file, parse_history, [], MAX_HISTORY_BYTES)

    def save_history(self, entries: list[HistoryEntry]) -> None:
        self.folder(self.root)
        write_json(
            self.history_file, {"schema": HISTORY_SCHEMA, "version": VERSION, "entries": [asdict(e) for e in entries]}
        )


def _owner_only(path: Path) -> None:
    mode = path.stat().st_mode & 0o7777
    if mode & 0o077:
        os.chmod(path, mode & 0o700)


def parse_history(data: object) -> list[HistoryEntry]:
    """Validate a decoded history file: every entry an object with a role, a text of bounded
    length, and numbers where numbers belong. Only the newest HISTORY_KEPT entries are kept."""
    if not isinstance(data, dict) or data.get("schema") != HISTORY_SCHEMA or data.get("version") != VERSION:
        raise SettingsError("not a Voice Companion history file of this version")
    items = data.get("entries")
    if not isinstance(items, list):
        raise SettingsError("the history has no list of entries")
    return [_history_entry(n, item) for n, item in enumerate(items)][-HISTORY_KEPT:]


def _history_entry(n: int, item: object) -> HistoryEntry:
    def number(value: object) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    if not isinstance(item, dict):
        raise SettingsError(f"history entry {n} is not an object")
    if item.get("role") not in ("user", "assistant"):
        raise SettingsError(f"history entry {n} has no role")
    text = item.get("text")
    if not isinstance(text, str) or len(text) > MAX_ENTRY_TEXT:
        raise SettingsError(f"history entry {n} has no text of at most {MAX_ENTRY_TEXT} characters")
    interrupted = item.get("interrupted", False)
    latency = item.get("latency_ms")
    at = item.get("at", 0.0)
    if not isinstance(interrupted, bool):
        raise SettingsError(f"history entry {n}: interrupted must be true or false")
    if latency is not None and not (number(latency) and latency >= 0):
        raise SettingsError(f"history entry {n}: latency_ms must be a number of milliseconds")
    if not number(at):
        raise SettingsError(f"history entry {n}: at must be a time in seconds")
    return HistoryEntry(item["role"], text, interrupted, None if latency is None else float(latency), float(at))
