"""Offline, proven: a whole spoken turn through the installed models inside a network namespace with
no interfaces (`unshare -n`, as root), with an audit hook that records every attempt to reach a
network (any socket connect but a local AF_UNIX one, any name lookup); and the run script, which
sets up only when it has to."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
import pytest

pytestmark = pytest.mark.models  # loads the real models (see the marker in pyproject.toml)

ROOT = Path(__file__).resolve().parent.parent

# Installed before the app imports anything: every connect and lookup, from any library, goes by it.
AUDITED_START = r"""
import os, socket, sys
attempts = os.environ["NETWORK_ATTEMPTS"]

def audit(event, args):
    if event == "socket.connect" and args[0].family == socket.AF_UNIX:
        return
    if event in ("socket.connect", "socket.getaddrinfo", "socket.sendto", "socket.gethostbyname"):
        with open(attempts, "a") as f:
            f.write(f"{event} {args[1:]!r}\n")
        raise PermissionError(f"network access during an offline run: {event}")

sys.addaudithook(audit)
sys.argv = ["voice-companion", *sys.argv[1:]]
from app.cli import run
run()
"""


def test_a_spoken_turn_runs_with_no_network_at_all(tmp_path):
    attempts = tmp_path / "attempts.txt"
    out = tmp_path / "reply.wav"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(PYTHONPATH=str(ROOT), NETWORK_ATTEMPTS=str(attempts))
    proc = subprocess.run(
        [
            "unshare",
            "-n",
            sys.executable,
            "-c",
            AUDITED_START,
            "talk",
            str(ROOT / "assets" / "questions" / "q01.flac"),
            "--json",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert not attempts.exists(), attempts.read_text()
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["transcript"].strip() and report["reply_text"].strip()
    assert report["reply_audio_seconds"] > 0.5 and out.exists()
    interfaces = subprocess.run(["unshare", "-n", "cat", "/proc/net/dev"], capture_output=True, text=True).stdout
    assert [line.split(":")[0].strip() for line in interfaces.splitlines()[2:]] == ["lo"]  # the loopback alone


def test_the_audit_hook_does_catch_a_connection(tmp_path):
    # The check above is only as good as the hook: here the program does try, and is caught.
    attempts = tmp_path / "attempts.txt"
    code = AUDITED_START.replace(
        "from app.cli import run\nrun()",
        "import urllib.request\ntry:\n    urllib.request.urlopen('http://example.com', timeout=2)\n"
        "except Exception:\n    pass",
    )
    subprocess.run(
        ["unshare", "-n", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NETWORK_ATTEMPTS": str(attempts)},
    )
    assert "socket.getaddrinfo" in attempts.read_text()


def make_checkout(tmp_path: Path) -> Path:
    """The run script in a copy of the checkout's layout, with a setup script that only records
    that it ran and makes the venv's entry point (the real setup installs from the network)."""
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "run.sh", checkout / "scripts" / "run.sh")
    (checkout / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (checkout / "packs.txt").write_text("pack==1\n")
    (checkout / "scripts" / "setup.sh").write_text(
        "set -e\necho ran >> setup.log\nmkdir -p .venv/bin\n"
        "printf '#!/bin/sh\\necho \"app $*\"\\n' > .venv/bin/voice-companion\nchmod +x .venv/bin/voice-companion\n"
    )
    return checkout


def run_script(checkout: Path, *args: str, offline: bool = False) -> subprocess.CompletedProcess:
    command = ["bash", str(checkout / "scripts" / "run.sh"), *args]
    return subprocess.run((["unshare", "-n"] if offline else []) + command, capture_output=True, text=True, timeout=60)


def test_the_run_script_sets_up_only_when_it_has_to(tmp_path):
    checkout = make_checkout(tmp_path)
    setups = lambda: len((checkout / "setup.log").read_text().splitlines())  # noqa: E731

    first = run_script(checkout, "talk", "q.flac")
    assert first.returncode == 0 and first.stdout.strip() == "app talk q.flac" and setups() == 1
    again = run_script(checkout, "--help", offline=True)  # no network, no setup: straight to the app
    assert again.returncode == 0 and again.stdout.strip() == "app --help" and setups() == 1
    (checkout / "pyproject.toml").write_text("[project]\nname = 'x'\nversion = '2'\n")
    assert run_script(checkout).returncode == 0 and setups() == 2  # what setup installs from changed
    assert run_script(checkout).returncode == 0 and setups() == 2
    (checkout / ".venv" / "bin" / "voice-companion").unlink()
    assert run_script(checkout).returncode == 0 and setups() == 3  # the venv lost the app
    (checkout / "scripts" / "setup.sh").write_text("exit 1\n")
    (checkout / "packs.txt").write_text("pack==2\n")
    failed = run_script(checkout)
    assert failed.returncode != 0 and "app" not in failed.stdout  # a failed setup is not marked done
