"""`bench startup`: how soon the desktop app is there and ready, and what it weighs.

The app is started as a user would start it (the bundle's executable when this runs from a bundle,
else `python -m app.cli` from the checkout), on Qt's offscreen platform, with a fresh data folder
that holds the default models' stamps only when `warm` runs are asked for. It appends one line per
milestone to a probe file (app/main.py `_report_startup`): the window painted; the models loaded
and the audio open, so a first reply is possible; the resident memory after 5 idle seconds.
Times are from the moment before the process was started. Also: the bundle's size by part.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.stats import summary

ROOT = Path(__file__).resolve().parents[2]
PROBE = "VOICE_COMPANION_STARTUP_PROBE"


def app_command() -> list[str]:
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "app.cli"]


def one_start(data_dir: Path, timeout: float = 300) -> dict:
    """Start the app once; the seconds to the window and to ready, and the idle memory."""
    with tempfile.TemporaryDirectory() as scratch:
        probe = Path(scratch) / "probe.jsonl"
        env = {**os.environ, PROBE: str(probe), "QT_QPA_PLATFORM": "offscreen", "VOICE_COMPANION_DATA": str(data_dir)}
        started = time.time()
        proc = subprocess.Popen(
            app_command(),
            cwd=ROOT if not getattr(sys, "frozen", False) else None,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        events: dict[str, dict] = {}
        try:
            while "idle" not in events:
                if proc.poll() is not None:
                    err = proc.stderr.read() if proc.stderr is not None else ""
                    raise RuntimeError(f"the app ended before it was ready: {err.strip()[-500:]}")
                if time.time() - started > timeout:
                    raise RuntimeError(f"the app was not ready within {timeout:.0f} s")
                time.sleep(0.05)
                if probe.exists():
                    events = {e["event"]: e for e in map(json.loads, probe.read_text().splitlines())}
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    if not events["ready"].get("engine_ready"):
        raise RuntimeError("the app was up without its conversation engine: see the log in the data folder")
    return {
        "window_s": round(events["window"]["time"] - started, 3),
        "ready_s": round(events["ready"]["time"] - started, 3),
        "idle_rss_mb": round(events["idle"]["rss_mb"], 1),
    }


def bundle_root() -> Path | None:
    """The bundle to weigh: this one when frozen, else the checkout's dist/voice-companion if built."""
    if getattr(sys, "frozen", False):
        return Path(sys.executable).parent
    built = ROOT / "dist" / "voice-companion"
    return built if built.is_dir() else None


def _part(relative: Path) -> str:
    """Which part of the bundle a file belongs to: each model, the big libraries, the rest."""
    parts = relative.parts
    if parts[0] == "_internal" and len(parts) > 1:
        parts = parts[1:]
    top = parts[0]
    if top == "models" and len(parts) > 1:
        return f"model {parts[1]}"
    for prefix, name in (
        ("torch", "torch"),
        ("functorch", "torch"),
        ("PySide6", "Qt (PySide6)"),
        ("shiboken6", "Qt (PySide6)"),
        ("llama_cpp", "llama.cpp"),
        ("ctranslate2", "CTranslate2"),
        ("onnxruntime", "onnxruntime"),
        ("av", "PyAV (FFmpeg)"),
        ("piper", "Piper (espeak-ng data)"),
        ("espeakng", "Piper (espeak-ng data)"),
        ("numpy", "numpy"),
        ("scipy", "scipy"),
        ("livekit", "livekit (WebRTC audio)"),
        ("parselmouth", "parselmouth (Praat)"),
        ("sympy", "sympy"),
        ("base_library.zip", "Python"),
    ):
        if (
            top == prefix
            or top.startswith(prefix + ".")
            or top.startswith(prefix + "-")
            or top.startswith("lib" + prefix)
        ):
            return name
    if top.startswith("libpython") or top == "python3.11" or top.startswith("lib-dynload"):
        return "Python"
    return "other"


def bundle_parts(root: Path) -> dict:
    """Bytes on disk per part of the bundle (symlinks not followed, so nothing counts twice)."""
    sizes: dict[str, int] = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            part = _part(path.relative_to(root))
            sizes[part] = sizes.get(part, 0) + path.stat().st_size
    total = sum(sizes.values())
    return {
        "total_mb": round(total / 1e6, 1),
        "parts_mb": {k: round(v / 1e6, 1) for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])},
    }


def run(starts: int = 3) -> dict:
    """From a bundle: the first start on a fresh data folder (the bundle hashes its models then),
    then `starts` more on that folder. From a checkout: `starts` starts on a fresh data folder
    whose models/ is the user's installed models (checked already)."""
    frozen = getattr(sys, "frozen", False)
    result: dict = {"bench": "startup", "from": "bundle" if frozen else "checkout"}
    data = Path(tempfile.mkdtemp(prefix="vc-startup-"))
    try:
        if not frozen:
            from models.registry.datadir import default_data_dir, models_dir

            models_dir(data).symlink_to(models_dir(default_data_dir()))
        first = one_start(data) if frozen else None
        later = [one_start(data) for _ in range(starts)]
    finally:
        shutil.rmtree(data, ignore_errors=True)
    if first is not None:
        result["first_start"] = first
    for key in ("window_s", "ready_s", "idle_rss_mb"):
        result[key] = summary([r[key] for r in later], digits=2)
    result["targets"] = {"window_s": 3.0, "ready_s": 10.0}
    root = bundle_root()
    result["bundle"] = bundle_parts(root) if root else "not built (bash scripts/package.sh)"
    return result
