"""The user's settings and conversation history on disk.

Both live in the user's folders (platformdirs, or $VOICE_COMPANION_DATA), carry a schema name and
version, and are written atomically. A file that cannot be read is never overwritten in place: it
is moved aside as `<name>.corrupt-<time>` and replaced by defaults, and the caller gets a notice to
show, so nothing is silently lost.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from core.engines import DEFAULT_ASR, DEFAULT_ENGINE, SETTINGS_ENGINES
from core.events import Mode
from core.turns import TurnConfig
from models.registry.atomic import write_json
from models.registry.datadir import default_data_dir

log = logging.getLogger(__name__)

SETTINGS_SCHEMA = "voice-companion/settings"
HISTORY_SCHEMA = "voice-companion/history"
VERSION = 1
MODES = tuple(Mode)
COMPUTE = ("auto", "cuda", "metal", "cpu")
SENSITIVITY_RANGE = (0.1, 0.9)
END_OF_TURN_RANGE = (200, 3000)


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

    def turn_config(self) -> TurnConfig:
        # Sensitivity is the inverse of the speech probability that counts as voiced.
        return TurnConfig(threshold=round(1.0 - self.vad_sensitivity, 3), end_of_turn_ms=self.end_of_turn_ms,
                          barge_in_threshold=round(1.0 - self.vad_sensitivity, 3))

    def to_json(self) -> dict:
        return {"schema": SETTINGS_SCHEMA, "version": VERSION, **asdict(self)}


def parse_settings(data: object) -> Settings:
    """Validate a decoded settings file; unknown keys are ignored (a newer version's additions)."""
    if not isinstance(data, dict) or data.get("schema") != SETTINGS_SCHEMA:
        raise SettingsError("not a Voice Companion settings file")
    if data.get("version") != VERSION:
        raise SettingsError(f"settings version {data.get('version')!r} is not {VERSION}")
    values = {}
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


@dataclass(frozen=True)
class HistoryEntry:
    role: str  # "user" or "assistant"
    text: str
    interrupted: bool = False
    latency_ms: float | None = None  # assistant lines: end of the user's speech -> first sound
    at: float = field(default_factory=time.time)


def load_json_or_recover(path: Path, parse, default):
    """(value, notice): the parsed file, or `default` with a notice when it was unreadable (the bad
    file is kept beside it). A missing file is simply the default, without a notice."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return default, None
    except OSError as exc:
        log.warning("could not read %s; using defaults", path, exc_info=True)
        return default, f"could not read {path.name} ({exc.strerror}); using defaults"
    try:
        return parse(json.loads(text)), None
    except (ValueError, TypeError, KeyError) as exc:
        backup = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        log.warning("%s is damaged; keeping it as %s and using defaults", path, backup.name, exc_info=True)
        path.replace(backup)
        return default, f"{path.name} was damaged ({exc}); it was kept as {backup.name} and defaults are used"


class UserFiles:
    """Where the app keeps what belongs to the user."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_data_dir()
        self.settings_file = self.root / "settings.json"
        self.history_file = self.root / "history.json"
        self.presets = self.root / "presets"
        self.voices = self.root / "voices"

    def load_settings(self) -> tuple[Settings, str | None]:
        return load_json_or_recover(self.settings_file, parse_settings, Settings())

    def save_settings(self, settings: Settings) -> None:
        check_settings(settings)
        self.root.mkdir(parents=True, exist_ok=True)
        write_json(self.settings_file, settings.to_json())

    def load_history(self) -> tuple[list[HistoryEntry], str | None]:
        return load_json_or_recover(self.history_file, parse_history, [])

    def save_history(self, entries: list[HistoryEntry]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_json(self.history_file, {"schema": HISTORY_SCHEMA, "version": VERSION,
                                       "entries": [asdict(e) for e in entries]})


def parse_history(data: object) -> list[HistoryEntry]:
    if not isinstance(data, dict) or data.get("schema") != HISTORY_SCHEMA or data.get("version") != VERSION:
        raise SettingsError("not a Voice Companion history file of this version")
    entries = []
    for item in data["entries"]:
        if item.get("role") not in ("user", "assistant") or not isinstance(item.get("text"), str):
            raise SettingsError("a history entry has no role or text")
        entries.append(HistoryEntry(**{k: item[k] for k in ("role", "text", "interrupted", "latency_ms", "at")
                                       if k in item}))
    return entries
