"""The push-to-talk key from any window, which way it can be had in this session, and which keys
may be push-to-talk keys at all.

Three ways (`choose_backend`, from XDG_SESSION_TYPE, WAYLAND_DISPLAY and DISPLAY):
- X11 (and Windows, macOS): a pynput listener (on X11 the RECORD extension, on its own thread
  "global-key") sees the key while other applications have the focus.
- Wayland: no client may see keys meant for another; where the desktop's GlobalShortcuts portal
  exists, the desktop watches the key for us and signals its press and release
  (app/portal_key.py).
- None (Wayland without the portal, no display): the settings say so in plain words, and the key
  works while the companion's window has the focus.
Either listener's callbacks only post press/release into the runtime's control queue
(Runtime.press/release are queue puts).

Keys are named as Qt names them (QKeySequence's portable text: "F8", "Space", "Pause", "X").
"""

from __future__ import annotations

import enum
import logging
import os
import sys
import threading
from dataclasses import dataclass
from typing import Callable, Mapping

log = logging.getLogger(__name__)

MODIFIERS = {"Ctrl", "Shift", "Alt", "Meta", "AltGr", "Super"}
# Keys the window gives a meaning of its own.
WINDOW_KEYS = {
    "Esc": "Esc stops the reply",
    "Return": "Enter sends a typed question",
    "Enter": "Enter sends a typed question",
    "Tab": "Tab moves between the window's controls",
    "Backtab": "Shift+Tab moves between the window's controls",
}
TYPING_KEYS = {"Space", "Backspace", "Del", "Left", "Right", "Up", "Down", "Home", "End"}
SPECIAL = {
    "Space": "space",
    "Insert": "insert",
    "Pause": "pause",
    "ScrollLock": "scroll_lock",
    "Menu": "menu",
    "Home": "home",
    "End": "end",
    "PgUp": "page_up",
    "PgDown": "page_down",
    "CapsLock": "caps_lock",
    "NumLock": "num_lock",
    "Print": "print_screen",
    "Del": "delete",
    "Backspace": "backspace",
    "Left": "left",
    "Right": "right",
    "Up": "up",
    "Down": "down",
}


def key_conflict(name: str, modifiers: tuple[str, ...] = (), global_key: bool = False) -> str | None:
    """Why `name` (held with `modifiers`) cannot be the push-to-talk key, or None if it can."""
    if not name:
        return "no key was pressed"
    if name in MODIFIERS:
        return f"{name} alone is part of the window's shortcuts (Ctrl+M mutes the microphone)"
    if modifiers:
        combo = "+".join([*modifiers, name])
        reason = "Ctrl+M mutes the microphone" if combo == "Ctrl+M" else "a key to hold must be a single key"
        return f"{combo}: {reason}"
    if name in WINDOW_KEYS:
        return WINDOW_KEYS[name]
    if global_key and (len(name) == 1 or name in TYPING_KEYS):
        return (
            f"{name} is used for typing in every other window; for a key that works everywhere "
            f"choose one you do not type with, such as F8, Pause or Insert"
        )
    if len(name) == 1 and name.isprintable():
        return (
            f"{name} types text; choose a key you do not type with, such as Space (not while "
            f"typing in the window), F8, Pause or Insert"
        )
    return None


class Backend(enum.Enum):
    PYNPUT = "pynput"  # X11's RECORD extension; the system's hooks on Windows and macOS
    PORTAL = "portal"  # Wayland: xdg-desktop-portal's GlobalShortcuts
    NONE = "none"


@dataclass(frozen=True)
class Choice:
    backend: Backend
    why_not: str | None = None  # Backend.NONE: why there is no global key here, in plain words


NO_PORTAL = (
    "This Wayland desktop offers no global shortcuts (its xdg-desktop-portal has no "
    "GlobalShortcuts portal; KDE Plasma, GNOME 48 and later, and Hyprland have one), and on "
    "Wayland an application cannot see keys pressed in other windows: the key works while this "
    "window has the focus"
)
_portal_answers: dict[str, str | None] = {}  # session bus address -> why the portal is unusable (None: usable)


def portal_problem() -> str | None:
    """Why the GlobalShortcuts portal cannot be used on this session bus, or None when it can
    (asked once per bus: the answer is a D-Bus round trip, up to 2 s when nothing answers)."""
    address = os.environ.get("DBUS_SESSION_BUS_ADDRESS", "")
    if address not in _portal_answers:
        from app.portal_key import PortalError, portal_version

        try:
            portal_version()
            _portal_answers[address] = None
        except PortalError as exc:
            log.info("no GlobalShortcuts portal: %s", exc)
            _portal_answers[address] = str(exc)
    return _portal_answers[address]


def pynput_problem() -> str | None:
    """Why pynput cannot listen here (not installed, or its backend finds no display), or None."""
    try:
        import pynput.keyboard  # noqa: F401
    except Exception as exc:  # pynput raises ImportError, or its backend's own errors, without a usable display
        log.info("pynput is not usable", exc_info=True)
        return f"The global key needs the pynput package ({type(exc).__name__}: {exc})"
    return None


def choose_backend(
    environ: Mapping[str, str] | None = None,
    portal: Callable[[], str | None] = portal_problem,
    pynput: Callable[[], str | None] = pynput_problem,
    platform: str = sys.platform,
) -> Choice:
    """How the push-to-talk key can work in every window in this session, if at all: on Linux,
    Wayland (XDG_SESSION_TYPE, else WAYLAND_DISPLAY) means the portal or nothing, even with
    XWayland's DISPLAY (an X client there sees only X clients' keys); otherwise an X DISPLAY
    means pynput."""
    env = os.environ if environ is None else environ
    if platform.startswith("linux"):
        session = env.get("XDG_SESSION_TYPE", "")
        if session == "wayland" or (session != "x11" and env.get("WAYLAND_DISPLAY")):
            return Choice(Backend.PORTAL) if portal() is None else Choice(Backend.NONE, NO_PORTAL)
        if not env.get("DISPLAY"):
            return Choice(
                Backend.NONE,
                "There is no X display and no Wayland session: the key works while this window has the focus",
            )
    why = pynput()
    return Choice(Backend.NONE, why) if why else Choice(Backend.PYNPUT)


def global_key_unavailable() -> str | None:
    """Why a global key is impossible in this session, or None when it can work."""
    return choose_backend().why_not


def global_key_note(backend: Backend) -> str:
    """What the settings say about a global key that can work here."""
    if backend is Backend.PORTAL:
        return (
            "While this is on, the desktop (its global shortcuts portal) tells the companion when "
            "this key goes down and up in any window; the desktop may ask you to confirm the key "
            "or to choose another."
        )
    return (
        "While this is on, the companion watches for this one key in every window; no other key "
        "is kept or sent anywhere."
    )


def start_global_key(
    name: str, on_press: Callable[[], None], on_release: Callable[[], None], on_problem: Callable[[str], None]
):
    """A started listener for the key in every window, by this session's backend (GlobalKey or
    PortalKey; both have `name` and `stop()`). Raises when it cannot start; `on_problem` (on the
    listener's thread) hears of a later failure, such as the desktop refusing the shortcut."""
    choice = choose_backend()
    if choice.backend is Backend.PORTAL:
        from app.portal_key import PortalKey

        return PortalKey(name, on_press, on_release, on_problem).start()
    if choice.backend is Backend.PYNPUT:
        return GlobalKey(name, on_press, on_release).start()
    raise RuntimeError(choice.why_not)


def pynput_key(name: str):
    """The pynput key for a Qt key name (KeyError when pynput has no such key)."""
    from pynput.keyboard import Key, KeyCode

    if name in SPECIAL:
        return getattr(Key, SPECIAL[name])
    if name.startswith("F") and name[1:].isdigit():
        return getattr(Key, f"f{int(name[1:])}")
    if len(name) == 1:
        return KeyCode.from_char(name.lower())
    raise KeyError(name)


class GlobalKey:
    """Calls `on_press` when the key goes down and `on_release` when it comes up, whichever window
    has the focus; key repeats are not presses. Both run on the listener's thread."""

    def __init__(self, name: str, on_press: Callable[[], None], on_release: Callable[[], None]) -> None:
        from pynput import keyboard

        self.name = name
        self._key = pynput_key(name)
        self._on_press, self._on_release = on_press, on_release
        self._down = False
        self._listener = keyboard.Listener(on_press=self._pressed, on_release=self._released)
        self._listener.name = "global-key"
        self._listener.daemon = True
        self._key = self._listener.canonical(self._key)  # compared with the canonical form of each key
        self.ready = threading.Event()

    def start(self) -> "GlobalKey":
        self._listener.start()
        self._listener.wait()  # the X connection is up and recording
        self.ready.set()
        return self

    def stop(self) -> None:
        """Stop listening (a key held now is released); the listener's thread has ended when this
        returns (within 2 s)."""
        self._listener.stop()
        if self._down:
            self._down = False
            self._on_release()
        self._end_recording()
        if self._listener.is_alive() and self._listener is not threading.current_thread():
            self._listener.join(timeout=2)
            if self._listener.is_alive():
                log.warning("the global key's listener did not end within 2 s")

    def _end_recording(self) -> None:
        """pynput (1.8) asks the X server to end the recording on the recording connection itself,
        which its thread is blocked reading: the request leaves only when another key is pressed.
        The RECORD extension lets any client disable a context, so a connection of our own ends it
        at once."""
        context = getattr(self._listener, "_context", None)
        if context is None or not sys.platform.startswith("linux"):
            return
        import Xlib.display

        try:
            display = Xlib.display.Display()
            try:
                display.record_disable_context(context)
                display.sync()
            finally:
                display.close()
        except Exception:  # python-xlib's errors have no common base; the join below then waits
            log.warning("could not end the global key's recording", exc_info=True)

    def _matches(self, key) -> bool:
        return key is not None and self._listener.canonical(key) == self._key

    def _pressed(self, key) -> None:
        if self._matches(key) and not self._down:
            self._down = True
            self._on_press()

    def _released(self, key) -> None:
        if self._matches(key) and self._down:
            self._down = False
            self._on_release()
