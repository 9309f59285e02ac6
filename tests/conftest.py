"""Shared fixtures. Real models come from the installed model packs, assembled once into a data
folder kept beside the checkout (never the user's own), and loaded once per test session."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("VOICE_COMPANION_DATA", str(ROOT / ".cache" / "data"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# Where Python is told not to write bytecode beside the sources (PYTHONDONTWRITEBYTECODE), it is
# written under .cache/pycache instead, for this process and every process the tests start: else
# every run compiles the app, the assertion-rewritten test modules and the pytest plugins again
# (about 5 of the 13 s each worker spends collecting).
if sys.dont_write_bytecode and sys.pycache_prefix is None:
    sys.pycache_prefix = os.environ["PYTHONPYCACHEPREFIX"] = str(ROOT / ".cache" / "pycache")
    sys.dont_write_bytecode = False
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

# Scratch files (tmp_path, tempfile, and the command-line processes the tests start) in memory
# where the machine has a tmpfs and TMPDIR does not say otherwise: the suite writes, fsyncs and
# removes thousands of small files (the damage and write-fault tests write a data folder per case),
# which costs milliseconds each on a disk. What is tested (renames, kills in the middle of a write,
# a full disk) behaves the same there.
SCRATCH = Path("/dev/shm")
if "TMPDIR" not in os.environ and SCRATCH.is_dir() and os.access(SCRATCH, os.W_OK | os.X_OK):
    os.environ["TMPDIR"] = str(SCRATCH)
    tempfile.tempdir = None  # read TMPDIR again

# Piper draws its noise (the voice's natural variation) from onnxruntime's random generator, so
# every rendering of a sentence differs. Seeded, a run of the suite hears the same voices every
# time: a test that passes here passes in CI, and one that fails fails the same way again (CI once
# heard "the capital of friends", and once a rendering the echo canceller liked 8 dB less than in
# eight local runs). The generator lives in each ONNX session and is seeded when the session is
# made, and the engine's voice speaks as many clauses as the timing of each reply gives (the
# cascade cuts clauses by the clock), so tests that need a given rendering take their own voice
# from `fresh_voice`, never the engine's. Run-to-run spread belongs in the unseeded benchmarks.
import onnxruntime  # noqa: E402

VOICE_SEED = 20261122
onnxruntime.set_seed(VOICE_SEED)


def fresh_voice():
    """A new instance of the packaged voice, seeded: the same renderings whatever ran before."""
    from models.registry import ModelStore
    from models.cascade.tts import PiperTts

    onnxruntime.set_seed(VOICE_SEED)
    return PiperTts(ModelStore().ensure("piper-joe-medium"))


# Fixtures that load the heavy real models (speech recognition, chat, voice): a test that uses one,
# directly or through another fixture, is in the `models` tier (`pytest -m "not models"` skips it).
# `voices` (test_echo, test_linear_echo) is speech from the packaged Piper voice. Files whose tests
# load models themselves say so with their own `pytestmark`.
def run_cli(*args: str, timeout: float = 180, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`voice-companion ARGS` as a user runs it, from the checkout, with `env` added to ours."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


MODEL_FIXTURES = {"stack", "speak", "voices"}


# The long runs. Without --slow (the fast tier, `pytest -m "not models"`), tests marked `slow` are
# skipped and each property test runs hypothesis's default 100 cases; scripts/test.sh (CI) passes
# --slow: the slow tests run and every property test runs SLOW_CASES cases (issue 13: at least 500
# random session schedules in CI).
SLOW_CASES = 600


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--slow",
        action="store_true",
        help=f"also run the tests marked slow, and {SLOW_CASES} cases of each property test (scripts/test.sh does)",
    )


def pytest_configure(config: pytest.Config) -> None:
    from hypothesis import settings

    settings.register_profile("slow", max_examples=SLOW_CASES)
    if config.getoption("--slow"):
        settings.load_profile("slow")  # before the test modules are imported: their settings derive from it


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    long = pytest.mark.skip(reason="long: runs with --slow (scripts/test.sh passes it)")
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.models)
        if "slow" in item.keywords and not config.getoption("--slow"):
            item.add_marker(long)


@pytest.fixture(scope="session")
def stack():
    """The default cascade engine and voice activity model, loaded once."""
    from core.engines import load_cascade
    from core.audio.vad import load_vad

    return load_cascade(), load_vad()


@pytest.fixture(scope="session")
def speak(stack):
    """Synthesizes a sentence with the packaged voice as 16 kHz mono float32: a user's question.
    A voice of its own, so what the engine said before does not change how the user sounds."""
    import soxr

    voice = fresh_voice()

    def speak(text: str, lead_ms: int = 300) -> np.ndarray:
        audio = np.concatenate(list(voice.synthesize(text)))
        audio = soxr.resample(audio, voice.rate, 16000).astype(np.float32)
        loud = np.flatnonzero(np.abs(audio) > 0.02)  # the voice's own lead-in and tail silence
        audio = audio[loud[0] : loud[-1] + 1]
        return np.concatenate([np.zeros(16 * lead_ms, np.float32), audio])

    return speak


from bench.stats import word_error  # noqa: E402  (the tests' shared measure)

__all__ = ["word_error"]


def _reinit_portaudio() -> None:
    """PortAudio lists the devices once, when sounddevice is imported: if that happened before the
    sound server existed, list them again."""
    sd = sys.modules.get("sounddevice")
    if sd is not None:
        sd._terminate()
        sd._initialize()


@pytest.fixture(scope="session")
def pulse(tmp_path_factory):
    """A private PulseAudio daemon with one null sink; the `pulse` device plays into it and records
    its monitor. Fails (never skips) without pulseaudio: CI installs it."""
    missing = [tool for tool in ("pulseaudio", "parec", "pacmd") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not found: install pulseaudio, pulseaudio-utils and "
            f"libportaudio2 (bash scripts/setup.sh --test does)"
        )
    runtime = tmp_path_factory.mktemp("pulse")
    env = {
        "PULSE_RUNTIME_PATH": str(runtime),  # its own socket and pid file: never the user's server
        "PULSE_STATE_PATH": str(runtime),
        "PULSE_SERVER": f"unix:{runtime}/native",
        "PULSE_SINK": "vc_sink",
        "PULSE_SOURCE": "vc_sink.monitor",
    }
    patch = pytest.MonkeyPatch()
    for key, value in env.items():
        patch.setenv(key, value)
    started = subprocess.run(
        [
            "pulseaudio",
            "--daemonize=true",
            "--exit-idle-time=-1",
            "-n",
            "--log-target=stderr",
            "--load=module-null-sink sink_name=vc_sink",
            f"--load=module-native-protocol-unix socket={runtime}/native auth-anonymous=1",
            "--load=module-cli-protocol-unix",
        ],  # for pacmd, which can kill a stream like an unplug
        capture_output=True,
        text=True,
        timeout=30,
    )
    if started.returncode != 0:
        patch.undo()
        pytest.fail(f"pulseaudio did not start (exit {started.returncode}): {started.stderr.strip()}")
    # An idle null sink renders in 2-second blocks and only notices a new stream at the next one;
    # a low-latency recorder kept open makes it tick every 10 ms, so each test's streams start at once.
    keepalive = subprocess.Popen(
        [
            "parec",
            "--device=vc_sink.monitor",
            "--latency-msec=10",
            "--rate=8000",
            "--channels=1",
            "--format=u8",
            "--raw",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        ready, _, _ = select.select([keepalive.stdout], [], [], 6.0)
        if not ready:
            pytest.fail("the PulseAudio null sink produced no audio within 6 s")
        threading.Thread(
            target=lambda: all(iter(lambda: keepalive.stdout.read(4096), b"")), daemon=True
        ).start()  # drain it, or it blocks on a full pipe
        _reinit_portaudio()
        yield env
    finally:
        keepalive.terminate()
        keepalive.wait(timeout=10)
        subprocess.run(["pulseaudio", "--kill"], capture_output=True, timeout=30)
        patch.undo()
        _reinit_portaudio()


@pytest.fixture
def files(tmp_path):
    """The user's files for a window under test, in a fresh folder with its presets folder made."""
    from core.settings import UserFiles

    files = UserFiles(tmp_path / "user")
    files.presets.mkdir(parents=True)
    return files


@pytest.fixture(scope="module")
def torch_one_thread():
    """Torch on one thread for a module's tiny models (restored after it). More threads gain
    nothing on a model this small and wait for each other at every operation on a machine whose
    cores are busy (another test process, a benchmark); docs/benchmarks.md has the figures."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def vad():
    from core.audio.vad import load_vad

    return load_vad()


@pytest.fixture
def make_window(qtbot, vad, files):
    """`make(devices, settings=None, seconds=0.3, engine=None)`: the main window, shown and
    active, on a runtime with the real VAD, the given fake devices and a quick fake engine
    (`engine`, or a QuickEngine whose replies last `seconds`), started and ready."""
    from app.main_window import MainWindow
    from core.app_backend import Runtime
    from tests.fakes import QuickEngine

    windows = []

    def make(devices, settings=None, seconds: float = 0.3, engine=None):
        if settings is not None:
            files.save_settings(settings)
        chosen = engine or QuickEngine(seconds)
        window = MainWindow(
            lambda post: Runtime(
                post, files, load_engine=lambda _s: chosen, vad=vad, devices=devices, device_poll_s=0.05
            )
        )
        qtbot.addWidget(window)
        window.show()
        window.activateWindow()  # its shortcuts are the active window's
        qtbot.waitUntil(window.isActiveWindow, timeout=5000)
        window.runtime.start()
        assert window.runtime.wait_ready(60)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.shut_down()
