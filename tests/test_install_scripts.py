"""install.sh and uninstall.sh on a stand-in bundle (the real one is tests/test_bundle.py's, built
only when packaging changed): the menu entry is valid, every file lands where a desktop looks for
it, and uninstalling takes out exactly what was installed, keeping the user's data unless asked."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bundle(tmp_path) -> Path:
    """The files install.sh copies, with an executable that answers --version and `data where`
    like the app does, and writes its data folder like the app does."""
    folder = tmp_path / "unpacked" / "voice-companion"
    (folder / "_internal").mkdir(parents=True)
    (folder / "_internal" / "VERSION").write_text("9.9.9\n")
    (folder / "voice-companion").write_text(
        '#!/bin/sh\ndata="${XDG_DATA_HOME:-$HOME/.local/share}/voice-companion"\nmkdir -p "$data"\n'
        'touch "$data/settings.json"\n'
        'case "$1" in --version) echo "voice-companion 9.9.9 (GPL-3.0-or-later)";; data) echo "$data";; esac\n'
    )
    (folder / "voice-companion").chmod(0o755)
    shutil.copy(ROOT / "packaging" / "install.sh", folder)
    shutil.copy(ROOT / "packaging" / "uninstall.sh", folder)
    (folder / "share" / "applications").mkdir(parents=True)
    shutil.copy(ROOT / "packaging" / "voice-companion.desktop", folder / "share" / "applications")
    made = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "scripts/icons.py", str(folder / "share" / "icons")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    return folder


def tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def run(*args, home: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    return subprocess.run(["bash", *map(str, args)], env=env, capture_output=True, text=True, timeout=120)


def test_into_a_prefix_and_out_again(bundle, tmp_path):
    prefix, home = tmp_path / "prefix", tmp_path / "home"
    home.mkdir()
    done = run(bundle / "install.sh", "--prefix", prefix, home=home)
    assert done.returncode == 0, done.stderr
    assert "installed Voice Companion 9.9.9" in done.stdout
    entry = prefix / "share" / "applications" / "voice-companion.desktop"
    checked = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
    assert checked.returncode == 0 and checked.stdout == "", checked.stdout
    assert f"Exec={prefix}/bin/voice-companion\n" in entry.read_text()
    for size in ("16x16", "32x32", "48x48", "128x128", "256x256", "512x512"):
        assert (prefix / "share" / "icons" / "hicolor" / size / "apps" / "voice-companion.png").is_file()
    assert (prefix / "share" / "icons" / "hicolor" / "scalable" / "apps" / "voice-companion.svg").is_file()
    launched = subprocess.run(
        [str(prefix / "bin" / "voice-companion"), "--version"],
        capture_output=True,
        text=True,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    assert launched.stdout.strip() == "voice-companion 9.9.9 (GPL-3.0-or-later)"
    again = run(bundle / "install.sh", "--prefix", prefix, home=home)  # over itself: replaced, not doubled
    assert again.returncode == 0, again.stderr
    gone = run(prefix / "opt" / "voice-companion" / "uninstall.sh", home=home)
    assert gone.returncode == 0, gone.stderr
    assert tree(prefix) == set()


def test_as_a_user_the_data_stays_unless_purged(bundle, tmp_path):
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)  # something of the user's own, left alone
    assert run(bundle / "install.sh", "--user", home=home).returncode == 0
    installed = home / ".local" / "opt" / "voice-companion"
    assert (installed / "voice-companion").is_file() and (home / ".local" / "bin" / "voice-companion").is_file()
    assert (home / ".local" / "share" / "applications" / "voice-companion.desktop").is_file()
    subprocess.run([str(home / ".local" / "bin" / "voice-companion")], env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
    data = home / ".local" / "share" / "voice-companion"
    assert (data / "settings.json").is_file()

    kept = run(installed / "uninstall.sh", home=home)
    assert kept.returncode == 0, kept.stderr
    assert tree(home) == {
        ".config",
        ".local",
        ".local/share",
        ".local/share/voice-companion",
        ".local/share/voice-companion/settings.json",
    }
    assert run(bundle / "install.sh", "--user", home=home).returncode == 0
    purged = run(installed / "uninstall.sh", "--purge", home=home)
    assert purged.returncode == 0, purged.stderr
    assert tree(home) == {".config", ".local", ".local/share"}  # the folders the data made before install


def test_refusals_are_one_line(bundle, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    bad = run(bundle / "install.sh", "--user", "--frobnicate", home=home)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "--frobnicate" in bad.stderr
    (bundle / "voice-companion").unlink()
    assert run(bundle / "install.sh", "--user", home=home).returncode == 2
    stray = tmp_path / "stray"
    stray.mkdir()
    shutil.copy(ROOT / "packaging" / "uninstall.sh", stray)
    refused = run(stray / "uninstall.sh", home=home)
    assert refused.returncode == 2 and "nothing removed" in refused.stderr and stray.is_dir()
