"""Voice style presets: a versioned JSON schema, validation, and the user's collection on disk.

A preset is refused with the field and the reason when it is malformed or out of range, and a bad
file never replaces a good one: every write goes through a temporary file and a rename.

    {"schema": "voice-companion/preset", "version": 1, "name": "Calm evening",
     "voice": "piper-joe-medium", "emotion": "calm", "speed": 0.9, "pitch": -1.0,
     "voice_reference": null, "persona": null}

`voice_reference`, when set, is {"clip": "<file name in the user's voices folder>",
"profile": {...the measured voice profile...}}; the profile is checked like a stored one
(core.style.voice_match.VoiceProfile.from_json), so an imported preset cannot carry a bad one.
Files are read through models/registry/userfile.py: a damaged one is one PresetError, whatever the
damage.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from core.style.emotion import EMOTIONS
from models.registry.atomic import make_private_dir, write_json
from models.registry.userfile import DamagedFile, keep_aside, read_json

log = logging.getLogger(__name__)

SCHEMA = "voice-companion/preset"
VERSION = 1
BUILT_IN = Path(__file__).resolve().parents[2] / "assets" / "presets"
SPEED_RANGE = (0.5, 2.0)
PITCH_RANGE = (-12.0, 12.0)
MAX_NAME = 60
MAX_PERSONA = 2000
_FIELDS = ("schema", "version", "name", "voice", "emotion", "speed", "pitch", "voice_reference", "persona")


class PresetError(ValueError):
    """A preset that cannot be used; the message names the field and the reason."""

    def __init__(self, field_name: str, reason: str, source: str = "") -> None:
        where = f"{source}: " if source else ""
        super().__init__(f"{where}preset field '{field_name}': {reason}")
        self.field = field_name


@dataclass(frozen=True)
class VoiceReference:
    clip: str  # file name of the reference clip in the user's voices folder
    profile: dict[str, object] = field(default_factory=dict)  # the measured profile (core.style.voice_match)


@dataclass(frozen=True)
class Preset:
    name: str
    voice: str = "piper-joe-medium"
    emotion: str = "neutral"
    speed: float = 1.0
    pitch: float = 0.0
    voice_reference: VoiceReference | None = None
    persona: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"schema": SCHEMA, "version": VERSION, **asdict(self)}


def parse_preset(data: object, source: str = "") -> Preset:
    """Validate a decoded JSON object into a Preset, or raise PresetError naming the field."""

    def fail(field_name: str, reason: str) -> PresetError:
        return PresetError(field_name, reason, source)

    def number(key: str, default: float, lo: float, hi: float, unit: str) -> float:
        assert isinstance(data, dict)  # checked below, before any field is read
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise fail(key, f"must be a number, got {value!r}")
        if not lo <= value <= hi:
            raise fail(key, f"{value:g} is outside {lo:g} to {hi:g}{unit}")
        return float(value)

    if not isinstance(data, dict):
        raise fail("(whole file)", "must be a JSON object")
    if data.get("schema") != SCHEMA:
        raise fail("schema", f"must be {SCHEMA!r}, got {data.get('schema')!r}")
    if data.get("version") != VERSION:
        raise fail("version", f"this app reads version {VERSION}, got {data.get('version')!r}")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise fail(unknown[0], "is not a preset field")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise fail("name", f"must be a non-empty text of at most {MAX_NAME} characters")
    if re.search(r"[/\\\x00-\x1f]", name):
        raise fail("name", "must not contain slashes or control characters")
    voice = data.get("voice", "piper-joe-medium")
    if not isinstance(voice, str) or not voice:
        raise fail("voice", "must be a voice id")
    emotion = data.get("emotion", "neutral")
    if not isinstance(emotion, str) or emotion not in EMOTIONS:
        raise fail("emotion", f"{emotion!r} is not one of {', '.join(EMOTIONS)}")
    speed = number("speed", 1.0, *SPEED_RANGE, "")
    pitch = number("pitch", 0.0, *PITCH_RANGE, " semitones")
    persona = data.get("persona")
    if persona is not None and (not isinstance(persona, str) or len(persona) > MAX_PERSONA):
        raise fail("persona", f"must be text of at most {MAX_PERSONA} characters, or null")
    reference = data.get("voice_reference")
    if reference is not None:
        if (
            not isinstance(reference, dict)
            or not isinstance(reference.get("clip"), str)
            or not isinstance(reference.get("profile", {}), dict)
        ):
            raise fail("voice_reference", 'must be null or {"clip": name, "profile": {...}}')
        clip = reference["clip"]
        if not clip or clip in (".", "..") or Path(clip).name != clip or "\\" in clip or len(clip) > 200:
            raise fail("voice_reference", "clip must be a plain file name")
        profile = dict(reference.get("profile", {}))
        if profile:  # empty: not measured yet (measured from the clip when used)
            from core.style.voice_match import VoiceProfile  # imported here: pulls in the pitch tracker

            try:
                VoiceProfile.from_json(profile)
            except (ValueError, KeyError, TypeError) as exc:
                raise fail("voice_reference", f"the voice profile is not valid ({exc})") from exc
        reference = VoiceReference(clip, profile)
    return Preset(name.strip(), voice, emotion, speed, pitch, reference, persona)


def read_preset(path: Path) -> Preset:
    """The preset in `path`; PresetError for a file that cannot be read or is damaged in any way."""
    try:
        data = read_json(Path(path))
    except DamagedFile as exc:
        raise PresetError("(whole file)", str(exc), str(path)) from exc
    except OSError as exc:
        raise PresetError("(whole file)", f"cannot be read ({exc.__class__.__name__})", str(path)) from exc
    return parse_preset(data, str(path))


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-").lower() + ".json"


class PresetStore:
    """Built-in presets (read-only, from assets/presets) and the user's own (in `folder`)."""

    def __init__(self, folder: Path, built_in: Path = BUILT_IN) -> None:
        self.folder = Path(folder)
        self.built_in = built_in

    def _user_files(self) -> dict[str, Path]:
        found = {}
        for path in sorted(self.folder.glob("*.json")) if self.folder.exists() else []:
            try:
                found[read_preset(path).name] = path
            except PresetError:
                continue  # a damaged user file is listed by `damaged()`, never silently used
        return found

    def damaged(self) -> list[str]:
        """User preset files that do not validate (kept on disk untouched), with the reason."""
        out = []
        for path in sorted(self.folder.glob("*.json")) if self.folder.exists() else []:
            try:
                read_preset(path)
            except PresetError as exc:
                log.warning("preset file %s is damaged", path, exc_info=True)
                out.append(str(exc))
        return out

    def recover(self) -> list[str]:
        """At start-up: move every damaged user preset file aside as `NAME.corrupt-TIME` (no longer
        listed, never overwritten) and return one notice for each."""
        notices = []
        for path in sorted(self.folder.glob("*.json")) if self.folder.exists() else []:
            try:
                read_preset(path)
                continue
            except PresetError as exc:
                damage = exc
            try:
                backup = keep_aside(path)
            except OSError as exc:
                log.warning("preset file %s is damaged and could not be moved aside", path, exc_info=True)
                notices.append(f"preset file {path.name} is damaged and was left out ({exc.strerror or exc})")
                continue
            log.warning("preset file %s is damaged; kept as %s", path, backup.name, exc_info=damage)
            notices.append(f"preset file {path.name} was damaged ({damage}); it was kept as {backup.name}")
        return notices

    def built_ins(self) -> list[Preset]:
        return [read_preset(p) for p in sorted(self.built_in.glob("*.json"))]

    def names(self) -> list[str]:
        names = [p.name for p in self.built_ins()]
        return names + [n for n in self._user_files() if n not in names]

    def is_built_in(self, name: str) -> bool:
        return any(p.name == name for p in self.built_ins())

    def get(self, name: str) -> Preset:
        for preset in self.built_ins():
            if preset.name == name:
                return preset
        path = self._user_files().get(name)
        if path is None:
            raise KeyError(f"no preset named {name!r}; there are: {', '.join(self.names())}")
        return read_preset(path)

    def save(self, preset: Preset, overwrite: bool = True) -> Path:
        parse_preset(preset.to_json())  # never write what could not be read back
        if self.is_built_in(preset.name):
            raise PresetError("name", f"{preset.name!r} is a built-in preset; save under another name")
        existing = self._user_files().get(preset.name)
        if existing is not None and not overwrite:
            raise PresetError("name", f"a preset named {preset.name!r} exists already")
        path = existing or self.folder / _file_name(preset.name)
        if existing is None and path.exists():  # another name maps to the same file name
            path = self.folder / _file_name(f"{preset.name}-{len(list(self.folder.glob('*.json')))}")
        make_private_dir(self.folder)
        write_json(path, preset.to_json())
        return path

    def delete(self, name: str) -> None:
        if self.is_built_in(name):
            raise PresetError("name", f"{name!r} is a built-in preset and cannot be deleted")
        path = self._user_files().get(name)
        if path is None:
            raise KeyError(f"no user preset named {name!r}")
        path.unlink()

    def rename(self, old: str, new: str) -> Path:
        if self.is_built_in(old):
            raise PresetError("name", f"{old!r} is a built-in preset; duplicate it instead")
        old_path = self._user_files().get(old)
        if old_path is None:
            raise KeyError(f"no user preset named {old!r}")
        path = self.save(replace(read_preset(old_path), name=new), overwrite=False)
        if path != old_path:  # the new file is in place before the old one goes
            old_path.unlink()
        return path

    def duplicate(self, name: str, new: str) -> Path:
        return self.save(replace(self.get(name), name=new), overwrite=False)

    def import_file(self, path: Path, overwrite: bool = False) -> Preset:
        """Validate a preset file and add it; a bad file changes nothing."""
        preset = read_preset(Path(path))
        self.save(preset, overwrite=overwrite)
        return preset

    def export(self, name: str, path: Path) -> None:
        write_json(Path(path), self.get(name).to_json(), private=False)  # the user's own file, shared as they like
