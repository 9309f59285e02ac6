"""Start at login: an XDG autostart entry, `$XDG_CONFIG_HOME/autostart/voice-companion.desktop`
(~/.config when unset), which freedesktop.org desktops (GNOME, KDE, Xfce, ...) run at login."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def autostart_file() -> Path:
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "autostart" / "voice-companion.desktop"


def _quoted(arg: str) -> str:
    """An Exec argument as the Desktop Entry spec wants it: quoted, with its reserved characters escaped."""
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
    return f'"{escaped}"'


def launch_command() -> tuple[list[str], Path | None]:
    """The installed `voice-companion` script, or this interpreter running the app from this checkout
    (then the entry's working folder is the checkout, so `-m app.cli` finds the app)."""
    script = shutil.which("voice-companion")
    if script:
        return [script], None
    return [sys.executable, "-m", "app.cli"], ROOT


def set_autostart(enabled: bool) -> Path:
    """Write (enabled) or remove the entry; returns its path. OSError when the folder is not writable."""
    path = autostart_file()
    if not enabled:
        path.unlink(missing_ok=True)
        return path
    command, folder = launch_command()
    lines = [
        "[Desktop Entry]",
        "Type=Application",
        "Name=Voice Companion",
        "Comment=A voice companion that runs on this computer",
        "Exec=" + " ".join(_quoted(a) for a in command),
        "Icon=" + str(ROOT / "assets" / "icon.svg"),
        "Terminal=false",
        "X-GNOME-Autostart-enabled=true",
    ]
    if folder is not None:
        lines.append(f"Path={folder}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path
