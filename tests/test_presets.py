"""Voice style presets: schema validation, the user's collection, import and export."""

import json

import pytest

from core.style.emotion import EMOTIONS
from core.style.presets import SCHEMA, Preset, PresetError, PresetStore, VoiceReference, parse_preset


def profile(**changes) -> dict:
    """A voice profile as the app stores one (its values need not be a real voice's)."""
    from core.style.voice_match import GRID_HZ, VoiceProfile

    return {**VoiceProfile(210.0, 6.0, 1.1, -9.0, tuple(0.0 for _ in GRID_HZ)).to_json(), **changes}


def good(**changes) -> dict:
    data = {
        "schema": SCHEMA,
        "version": 1,
        "name": "Evening",
        "voice": "piper-joe-medium",
        "emotion": "calm",
        "speed": 0.9,
        "pitch": -1.5,
        "voice_reference": None,
        "persona": None,
    }
    data.update(changes)
    return data


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"speed": 3.0}, "speed"),
        ({"speed": "fast"}, "speed"),
        ({"speed": float("nan")}, "speed"),
        ({"pitch": -13}, "pitch"),
        ({"emotion": "angry"}, "emotion"),
        ({"name": ""}, "name"),
        ({"name": "a/b"}, "name"),
        ({"version": 2}, "version"),
        ({"schema": "other"}, "schema"),
        ({"colour": "blue"}, "colour"),
        ({"voice_reference": {"clip": "../x.wav"}}, "voice_reference"),
        ({"persona": 5}, "persona"),
        ({"voice_reference": {"clip": "x.wav", "profile": {"f0_median_hz": 210.0}}}, "voice_reference"),
        ({"voice_reference": {"clip": "x.wav", "profile": profile(f0_median_hz=-1.0)}}, "voice_reference"),
        ({"voice_reference": {"clip": "x.wav", "profile": profile(envelope_db=["loud"])}}, "voice_reference"),
        ({"emotion": ["calm"]}, "emotion"),
    ],
)
def test_bad_fields_are_refused_with_the_field_named(changes, field):
    with pytest.raises(PresetError) as err:
        parse_preset(good(**changes), "my.json")
    assert err.value.field == field
    assert f"'{field}'" in str(err.value) and str(err.value).startswith("my.json")


def test_built_ins_cover_every_emotion_and_validate():
    store = PresetStore(folder=__import__("pathlib").Path("/nonexistent"))
    emotions = {p.emotion for p in store.built_ins()}
    assert emotions == set(EMOTIONS)


def test_round_trip_and_crud(tmp_path):
    store = PresetStore(tmp_path / "presets")
    preset = parse_preset(
        good(voice_reference={"clip": "anna.wav", "profile": profile()}, persona="You are Ada, a patient tutor.")
    )
    store.save(preset)
    assert store.get("Evening") == preset
    export = tmp_path / "out.json"
    store.export("Evening", export)
    assert parse_preset(json.loads(export.read_text())) == preset
    store.duplicate("Evening", "Evening 2")
    store.rename("Evening 2", "Night")
    assert "Night" in store.names() and "Evening 2" not in store.names()
    store.delete("Night")
    assert "Night" not in store.names()
    with pytest.raises(PresetError):
        store.delete("Calm")  # built-in
    with pytest.raises(PresetError):
        store.save(Preset(name="Calm"))  # a built-in's name
    assert store.get("Evening").voice_reference == VoiceReference("anna.wav", profile())


def test_a_malformed_import_changes_nothing(tmp_path):
    store = PresetStore(tmp_path / "presets")
    store.save(parse_preset(good()))
    before = {p.name: p.read_bytes() for p in (tmp_path / "presets").iterdir()}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(good(speed=5.0)))  # same name, out of range
    with pytest.raises(PresetError, match="speed"):
        store.import_file(bad, overwrite=True)
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema": "voice-companion/preset", "name": ')
    with pytest.raises(PresetError, match="not valid JSON"):
        store.import_file(broken)
    after = {p.name: p.read_bytes() for p in (tmp_path / "presets").iterdir()}
    assert after == before
    assert store.get("Evening").speed == 0.9


def test_damaged_user_file_is_reported_not_used(tmp_path):
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "oops.json").write_text(json.dumps(good(name="Oops", emotion="furious")))
    store = PresetStore(folder)
    assert "Oops" not in store.names()
    assert any("emotion" in d for d in store.damaged())
    assert (folder / "oops.json").exists()  # kept for the user to fix, never deleted


def test_an_exported_preset_with_a_bad_voice_profile_is_not_imported(tmp_path):
    store = PresetStore(tmp_path / "presets")
    shared = tmp_path / "shared.json"
    shared.write_text(json.dumps(good(voice_reference={"clip": "anna.wav", "profile": profile(formant_scale="big")})))
    with pytest.raises(PresetError) as err:
        store.import_file(shared)
    assert err.value.field == "voice_reference"
    assert store.names() == [p.name for p in store.built_ins()]
