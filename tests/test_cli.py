"""The command line: `talk` end to end as a user runs it, and every kind of bad input refused
with one clear line and exit code 2."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return run_cli(*args, timeout=timeout)


def assert_refused(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in lines[0].lower(), lines[0]


def test_talk_json_end_to_end(tmp_path, speak):
    question = tmp_path / "q.wav"
    # 44.1 kHz stereo: the command must resample and downmix.
    audio = speak("How many legs does a spider have?")
    import soxr

    stereo = np.stack([soxr.resample(audio, 16000, 44100)] * 2, axis=1) * 0.8
    soundfile.write(question, stereo, 44100)
    out = tmp_path / "reply.wav"
    proc = run("talk", str(question), "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "spider" in report["transcript"].lower()
    assert report["reply_text"]
    assert set(report["latency_ms"]) == {"end_of_turn", "asr", "llm_first_token", "tts_first_audio", "response"}
    assert all(v > 0 for v in report["latency_ms"].values())
    assert report["reply_audio_seconds"] > 0.3
    # One turn in the file: one turn answered, and the first turn's fields are its own.
    [turn] = report["turns"]
    assert turn["transcript"] == report["transcript"] and turn["end_reason"] == "complete"
    assert report["summary"]["turns"] == report["summary"]["answered"] == 1
    assert "handover" in turn["stages_ms"]
    # The conversation as heard (question and reply on one timeline) and the replies alone beside it.
    info = soundfile.info(out)
    assert info.frames / info.samplerate == pytest.approx(report["summary"]["seconds"], abs=0.02)
    replies, rate = soundfile.read(report["replies_wav"])
    sounding = np.flatnonzero(np.abs(replies) > 1e-4)
    assert (sounding[-1] - sounding[0]) / rate == pytest.approx(report["reply_audio_seconds"], abs=0.25)
    assert info.frames / info.samplerate > len(audio) / 16000 + report["reply_audio_seconds"] - 0.5


def test_not_audio(tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio")
    assert_refused(run("talk", str(bad)), "not a readable audio file")


def test_missing_and_folder_paths(tmp_path):
    assert_refused(run("talk", str(tmp_path / "nope.wav")), "no such file")
    assert_refused(run("talk", str(tmp_path)), "folder")


def test_empty_audio(tmp_path):
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0, np.float32), 16000)
    assert_refused(run("talk", str(empty)), "empty")


def test_only_silence(tmp_path):
    quiet = tmp_path / "quiet.flac"
    noise = np.random.default_rng(0).normal(0, 0.0005, 16000 * 3).astype(np.float32)
    soundfile.write(quiet, noise, 16000)
    assert_refused(run("talk", str(quiet)), "no speech")


def test_longer_than_ten_minutes(tmp_path):
    long = tmp_path / "long.wav"
    soundfile.write(long, np.zeros(8000 * 601, np.int16), 8000, subtype="PCM_16")
    assert_refused(run("talk", str(long)), "longer than")


def test_bad_options(tmp_path):
    assert_refused(run("talk", str(tmp_path / "x.wav"), "--speed", "9"), "speed")
    assert_refused(run("talk", str(tmp_path / "x.wav"), "--out", str(tmp_path / "no" / "r.wav")), "does not exist")
    proc = run("frobnicate")
    assert proc.returncode == 2 and "unknown command" in proc.stderr


def test_unknown_model_is_one_line(tmp_path, speak):
    question = tmp_path / "q.wav"
    soundfile.write(question, speak("Hello there, how are you?"), 16000)
    assert_refused(run("talk", str(question), "--llm", "no-such-model"), "no-such-model")


def test_voice_reference_is_checked_and_applied(tmp_path, speak):
    short = tmp_path / "short.wav"
    soundfile.write(short, speak("Hello there."), 16000)
    question = tmp_path / "q.wav"
    soundfile.write(question, speak("What is the capital of France?"), 16000)
    assert_refused(run("talk", str(question), "--voice-reference", str(short)), "voice-reference", "at least 5 seconds")

    import soxr

    # A higher speaker: the same voice played 25% faster (pitch and formants up), 8 s of it.
    text = (
        "The morning was bright and quiet. We walked along the river and talked about the summer. "
        "Later we had tea in a small garden near the old bridge, and watched the boats go by."
    )
    higher = soxr.resample(speak(text), 16000 * 1.25, 16000).astype(np.float32)
    reference = tmp_path / "reference.wav"
    soundfile.write(reference, higher, 16000)
    out = tmp_path / "matched.wav"
    proc = run("talk", str(question), "--voice-reference", str(reference), "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "paris" in report["reply_text"].lower()
    assert report["reply_audio_seconds"] > 0.3


@pytest.mark.slow  # a dozen command-line processes
def test_presets_import_export_and_refusals(tmp_path):
    env_root = tmp_path / "data"

    def presets(*args):
        return subprocess.run(
            [sys.executable, "-m", "app.cli", "presets", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "VOICE_COMPANION_DATA": str(env_root)},
        )

    listed = presets("list")
    assert listed.returncode == 0 and "Calm  (built in)" in listed.stdout
    exported = tmp_path / "calm.json"
    assert presets("export", "Calm", str(exported)).returncode == 0
    data = json.loads(exported.read_text())
    data["name"], data["pitch"] = "My calm", -3
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps(data))
    assert presets("import", str(mine)).returncode == 0
    assert json.loads(presets("show", "My calm").stdout)["pitch"] == -3
    assert_refused(presets("import", str(mine)), "exists")  # no silent overwrite
    data["pitch"] = 40
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    assert_refused(presets("import", str(bad), "--overwrite"), "pitch")
    assert json.loads(presets("show", "My calm").stdout)["pitch"] == -3  # the good one is intact
    assert_refused(presets("delete", "Calm"), "built-in")
    assert presets("delete", "My calm").returncode == 0
    assert_refused(presets("show", "My calm"), "no preset")


def test_version_is_pyprojects(tmp_path):
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    proc = run("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"voice-companion {project['version']} ({project['license']})"


def test_avx2_only_takes_the_cached_avx2_llama_cpp_or_says_how_to_build_it(tmp_path, monkeypatch, capsys):
    from importlib.metadata import version

    from app.cli import _avx2_llama_site, main

    monkeypatch.setenv("VC_BUILD_CACHE", str(tmp_path))
    assert main(["bench", "latency", "--avx2-only"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "scripts/package.sh" in err
    unfinished = tmp_path / f"llama-{version('llama_cpp_python')}-avx2-0123456789ab"
    (unfinished / "site").mkdir(parents=True)
    assert _avx2_llama_site() is None  # a build that never finished is not taken
    (unfinished / ".complete").touch()
    assert _avx2_llama_site() == unfinished / "site"
    (tmp_path / "llama-0.0.1-avx2-0123456789ab" / "site").mkdir(parents=True)  # another version's
    (tmp_path / "llama-0.0.1-avx2-0123456789ab" / ".complete").touch()
    assert _avx2_llama_site() == unfinished / "site"
