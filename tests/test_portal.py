"""The push-to-talk key on Wayland, through the desktop's GlobalShortcuts portal, on a real D-Bus:
a private session bus (dbus-daemon) and a stand-in portal service written here that implements
org.freedesktop.portal.GlobalShortcuts as xdg-desktop-portal does (CreateSession and BindShortcuts
answered through a Request's Response signal, Activated/Deactivated when the key goes down and up,
the Session's Close and Closed). The window, on a quick fake engine and fake devices, must hold a
turn open between Activated and Deactivated and answer it; where no global key is possible the
settings say so and the key still works in the window; and which way the key is had follows the
environment."""

from __future__ import annotations

import queue
import shutil
import subprocess
import threading
import time

import pytest
from jeepney import DBusAddress, HeaderFields, MessageType, new_error, new_method_return, new_signal
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection
from PySide6.QtCore import Qt

from app import global_key
from app.global_key import Backend, choose_backend
from app.portal_key import PortalKey, trigger
from app.settings_dialog import SettingsDialog
from core.settings import Settings
from tests.fakes import FakeDevices, QuickEngine

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        shutil.which("dbus-daemon") is None, reason="needs dbus-daemon (scripts/setup.sh --test installs it)"
    ),
]

NAME = "org.freedesktop.portal.Desktop"
ROOT_PATH = "/org/freedesktop/portal/desktop"
SHORTCUTS = "org.freedesktop.portal.GlobalShortcuts"


@pytest.fixture
def session_bus(monkeypatch):
    """A private session bus, and a Wayland session's environment pointing at it."""
    daemon = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1"], stdout=subprocess.PIPE, text=True
    )
    try:
        address = daemon.stdout.readline().strip()
        assert address.startswith("unix:"), address
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        monkeypatch.setenv("XDG_SESSION_TYPE", "wayland")
        monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
        monkeypatch.setattr(global_key, "_portal_answers", {})
        yield address
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


class StandInPortal:
    """org.freedesktop.portal.Desktop with the GlobalShortcuts interface (version 2), on its own
    thread and connection. `bind_response` is the Response code BindShortcuts gets (0 success,
    1 cancelled by the user); `response_first` sends CreateSession's Response signal before the
    method's reply (the race the portal's documentation warns clients about)."""

    def __init__(self, bind_response: int = 0, response_first: bool = False, trigger_description: str = "F8"):
        self.bind_response, self.response_first, self.trigger_description = (
            bind_response,
            response_first,
            trigger_description,
        )
        self.calls: list[tuple[str, tuple]] = []
        self.sessions: list[str] = []
        self.closed: list[str] = []
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self.conn = open_dbus_connection("SESSION")
        reply = self.conn.send_and_get_reply(message_bus.RequestName(NAME, 4), timeout=5)  # 4: do not queue
        assert reply.body == (1,), reply.body  # primary owner
        self._thread = threading.Thread(target=self._serve, name="stand-in-portal", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.conn.close()

    # ---- what the desktop does, asked by the test ----------------------------------------------

    def key(self, member: str, shortcut_id: str = "push-to-talk", session: str | None = None) -> None:
        """Emit Activated or Deactivated for `shortcut_id` in `session` (the last one made)."""
        body = (session or self.sessions[-1], shortcut_id, int(time.monotonic() * 1000), {})
        self._commands.put(new_signal(DBusAddress(ROOT_PATH, interface=SHORTCUTS), member, "osta{sv}", body))

    def change_trigger(self, description: str) -> None:
        """The user gives the shortcut another key in the desktop's settings."""
        shortcuts = [
            ("push-to-talk", {"description": ("s", "Push to talk"), "trigger_description": ("s", description)})
        ]
        self._commands.put(
            new_signal(
                DBusAddress(ROOT_PATH, interface=SHORTCUTS),
                "ShortcutsChanged",
                "oa(sa{sv})",
                (self.sessions[-1], shortcuts),
            )
        )

    def end_session(self) -> None:
        """The desktop closes the session (as when the user revokes the shortcut)."""
        path = self.sessions[-1]
        self._commands.put(
            new_signal(DBusAddress(path, interface="org.freedesktop.portal.Session"), "Closed", "a{sv}", ({},))
        )

    def members(self) -> list[str]:
        return [member for member, _body in self.calls]

    # ---- the service ---------------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            while not self._commands.empty():
                self.conn.send(self._commands.get())
            try:
                message = self.conn.receive(timeout=0.02)
            except TimeoutError:
                continue
            if message.header.message_type == MessageType.method_call:
                self._answer(message)

    def _answer(self, call) -> None:
        fields = call.header.fields
        member, path = fields.get(HeaderFields.member), fields.get(HeaderFields.path)
        sender = fields[HeaderFields.sender].lstrip(":").replace(".", "_")
        self.calls.append((member, call.body))
        if member == "Get" and path == ROOT_PATH:
            if call.body == (SHORTCUTS, "version"):
                self.conn.send(new_method_return(call, "v", (("u", 2),)))
            else:
                self.conn.send(new_error(call, "org.freedesktop.DBus.Error.InvalidArgs", "s", ("no such property",)))
        elif member == "CreateSession" and path == ROOT_PATH:
            options = call.body[0]
            request = f"{ROOT_PATH}/request/{sender}/{options['handle_token'][1]}"
            session = f"{ROOT_PATH}/session/{sender}/{options['session_handle_token'][1]}"
            self.sessions.append(session)
            response = self._response(request, 0, {"session_handle": ("s", session)})
            for message in (
                [response, new_method_return(call, "o", (request,))]
                if self.response_first
                else [new_method_return(call, "o", (request,)), response]
            ):
                self.conn.send(message)
        elif member == "BindShortcuts" and path == ROOT_PATH:
            session, shortcuts, _parent, options = call.body
            request = f"{ROOT_PATH}/request/{sender}/{options['handle_token'][1]}"
            bound = [
                (sid, {"description": props["description"], "trigger_description": ("s", self.trigger_description)})
                for sid, props in shortcuts
            ]
            self.conn.send(new_method_return(call, "o", (request,)))
            results = {"shortcuts": ("a(sa{sv})", bound)} if self.bind_response == 0 else {}
            self.conn.send(self._response(request, self.bind_response, results))
        elif member == "Close" and path in self.sessions:
            self.closed.append(path)
            self.conn.send(new_method_return(call))
        else:
            self.conn.send(new_error(call, "org.freedesktop.DBus.Error.UnknownMethod", "s", (member,)))

    @staticmethod
    def _response(request: str, code: int, results: dict):
        return new_signal(
            DBusAddress(request, interface="org.freedesktop.portal.Request"), "Response", "ua{sv}", (code, results)
        )


@pytest.fixture
def portal(session_bus):
    made = []

    def make(**kwargs) -> StandInPortal:
        made.append(StandInPortal(**kwargs))
        return made[-1]

    yield make
    for service in made:
        service.close()


def _global_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "global-key"]


# ---- which way the key is had ---------------------------------------------------------------------


def _no_probe():
    raise AssertionError("the portal was asked outside a Wayland session")


@pytest.mark.parametrize(
    "env, portal_answer, expected",
    [
        ({"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}, None, Backend.PORTAL),
        ({"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}, "ServiceUnknown", Backend.NONE),
        # XWayland gives a Wayland session a DISPLAY too; an X client there sees only X clients' keys.
        ({"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}, None, Backend.PORTAL),
        ({"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}, "no portal", Backend.NONE),
        ({"WAYLAND_DISPLAY": "wayland-1"}, None, Backend.PORTAL),  # no session type said: the socket tells
        ({"XDG_SESSION_TYPE": "x11", "DISPLAY": ":0"}, _no_probe, Backend.PYNPUT),
        ({"DISPLAY": ":0"}, _no_probe, Backend.PYNPUT),
        ({"XDG_SESSION_TYPE": "tty"}, _no_probe, Backend.NONE),
        ({}, _no_probe, Backend.NONE),
    ],
)
def test_the_backend_follows_the_session(env, portal_answer, expected):
    probe = portal_answer if callable(portal_answer) else (lambda: portal_answer)
    choice = choose_backend(env, probe, pynput=lambda: None, platform="linux")
    assert choice.backend is expected
    if expected is Backend.NONE:
        assert choice.why_not and "window has the focus" in choice.why_not
        if env.get("WAYLAND_DISPLAY"):
            assert "Wayland" in choice.why_not and "global shortcuts" in choice.why_not
        else:
            assert "no X display" in choice.why_not
    else:
        assert choice.why_not is None


def test_triggers_are_named_as_the_shortcuts_specification_names_keys():
    assert [trigger(k) for k in ("F8", "Pause", "Space", "PgUp", "ScrollLock", "Ins", "X")] == [
        "F8",
        "Pause",
        "space",
        "Page_Up",
        "Scroll_Lock",
        "Insert",
        "x",
    ]


def test_the_portal_is_found_on_the_session_bus_only_when_it_is_there(session_bus):
    assert choose_backend().backend is Backend.NONE  # a bus without the portal service
    global_key._portal_answers.clear()
    service = StandInPortal()
    try:
        assert choose_backend().backend is Backend.PORTAL
        assert ("Get", (SHORTCUTS, "version")) in service.calls
    finally:
        service.close()


# ---- the key through the portal -------------------------------------------------------------------


@pytest.mark.parametrize("response_first", [False, True])
def test_portal_key_presses_between_activated_and_deactivated(portal, response_first):
    service = portal(response_first=response_first)
    events = queue.SimpleQueue()
    key = PortalKey("F8", lambda: events.put("press"), lambda: events.put("release")).start()
    try:
        assert key.bound.wait(5), key.problem
        assert key.trigger_description == "F8"
        assert service.members()[:2] == ["CreateSession", "BindShortcuts"]
        _session, shortcuts, _parent, _options = service.calls[1][1]
        assert shortcuts[0][0] == "push-to-talk" and shortcuts[0][1]["preferred_trigger"] == ("s", "F8")
        service.key("Activated", shortcut_id="something-else")  # not ours
        service.key("Activated", session=service.sessions[-1] + "x")  # not our session
        service.key("Activated")
        service.key("Activated")  # a repeat is not a second press
        assert events.get(timeout=5) == "press"
        service.key("Deactivated")
        assert events.get(timeout=5) == "release"
        assert events.empty()
        service.change_trigger("Pause")
        deadline = time.monotonic() + 5
        while key.trigger_description != "Pause" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert key.trigger_description == "Pause"
    finally:
        key.stop()
    assert not _global_threads()
    deadline = time.monotonic() + 5
    while not service.closed and time.monotonic() < deadline:
        time.sleep(0.02)
    assert service.closed == [service.sessions[-1]]  # the session was closed on stop


def test_the_window_holds_a_turn_open_between_the_portal_signals_and_answers_it(qtbot, portal, make_window):
    service = portal()
    engine = QuickEngine()
    devices = FakeDevices(inputs=["Fake microphone"])
    window = make_window(
        devices, Settings(mode="push-to-talk", push_to_talk_key="F8", global_push_to_talk=True), engine=engine
    )
    assert window.global_key is not None, window.global_key_problem
    assert window.global_key.bound.wait(5)
    qtbot.waitUntil(lambda: window.state.state == "listening", timeout=10000)
    window.clearFocus()  # the key comes from the desktop, not the window's keyboard focus
    service.key("Activated")
    qtbot.waitUntil(lambda: window.state.state == "hearing", timeout=5000)
    held_from = time.monotonic()
    qtbot.wait(1200)
    assert window.state.state == "hearing"  # the turn stays open while the key is down
    assert not engine.calls
    service.key("Deactivated")
    held = time.monotonic() - held_from
    qtbot.waitUntil(lambda: len(engine.calls) == 1, timeout=5000)
    turn = engine.calls[0]
    assert turn.audio.size / turn.rate >= 1.0 and turn.audio.size / turn.rate <= held + 1.0
    qtbot.waitUntil(
        lambda: any(line.role == "assistant" and not line.live for line in window.view.lines), timeout=10000
    )

    # The desktop ends the session while the key is held: the turn is released and the window says so.
    service.key("Activated")
    qtbot.waitUntil(lambda: window.state.state == "hearing", timeout=5000)
    service.end_session()
    qtbot.waitUntil(lambda: len(engine.calls) == 2, timeout=5000)
    qtbot.waitUntil(lambda: window.notice.isVisible(), timeout=5000)
    assert "no longer works in every window" in window.notice.text()
    assert "ended" in window.notice.text()
    qtbot.waitUntil(lambda: not _global_threads(), timeout=5000)


def test_a_refused_shortcut_is_a_notice_and_the_window_key_still_works(qtbot, portal, make_window):
    portal(bind_response=1)
    window = make_window(
        FakeDevices(inputs=["Fake microphone"]),
        Settings(mode="push-to-talk", push_to_talk_key="F8", global_push_to_talk=True),
    )
    qtbot.waitUntil(lambda: window.notice.isVisible(), timeout=5000)
    assert "you cancelled it" in window.notice.text() and "focus" in window.notice.text()
    _press_in_the_window(qtbot, window)


# ---- no global key possible --------------------------------------------------------------------


def _press_in_the_window(qtbot, window) -> None:
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    qtbot.waitUntil(lambda: window.state.state == "listening", timeout=10000)
    qtbot.keyPress(window, Qt.Key_F8)
    qtbot.waitUntil(lambda: window.state.state == "hearing", timeout=5000)
    qtbot.keyRelease(window, Qt.Key_F8)
    qtbot.waitUntil(lambda: window.state.state != "hearing", timeout=5000)


def test_wayland_without_the_portal_says_so_and_the_window_key_works(qtbot, session_bus, make_window):
    window = make_window(
        FakeDevices(inputs=["Fake microphone"]),
        Settings(mode="push-to-talk", push_to_talk_key="F8", global_push_to_talk=True),
    )
    assert window.global_key is None and not _global_threads()
    assert "Wayland" in window.global_key_problem
    dialog = SettingsDialog(window.runtime, window)
    qtbot.addWidget(dialog)
    dialog.show()
    assert not dialog.desktop.global_box.isEnabled() and not dialog.desktop.global_box.isChecked()
    note = dialog.desktop.global_note.text()
    assert "offers no global shortcuts" in note and "works while this window has the focus" in note, note
    dialog.close()
    _press_in_the_window(qtbot, window)


def test_with_the_portal_the_settings_say_the_desktop_watches_the_key(qtbot, portal, make_window):
    portal(trigger_description="Shift+F9")
    window = make_window(FakeDevices(inputs=["Fake microphone"]), Settings(push_to_talk_key="F8"))
    dialog = SettingsDialog(window.runtime, window)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.desktop.global_box.isEnabled()
    dialog.desktop.global_box.setChecked(True)
    assert "global shortcuts portal" in dialog.desktop.global_note.text()
    assert dialog.apply()
    assert window.runtime.settings.global_push_to_talk
    window.apply_global_key()  # what closing the settings pane does
    assert isinstance(window.global_key, PortalKey) and window.global_key.bound.wait(5)
    dialog.close()
    # The desktop chose another key than the one asked for: the settings say which.
    again = SettingsDialog(window.runtime, window)
    qtbot.addWidget(again)
    assert "Your desktop bound it to Shift+F9." in again.desktop.global_note.text()
