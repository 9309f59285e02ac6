"""The push-to-talk key from any window on Wayland, through the desktop's GlobalShortcuts portal
(org.freedesktop.portal.GlobalShortcuts, xdg-desktop-portal) on the session bus.

The companion asks the portal for a session, binds one shortcut ("push-to-talk", the chosen key as
its preferred trigger; the desktop may ask the user to confirm it or to pick another key) and then
hears Activated when the key goes down and Deactivated when it comes up, whichever window has the
focus. No key is ever seen by the companion: the desktop does the watching.

The portal answers a request in two steps: the method returns a Request object's path at once,
and that object's Response signal carries the result (0 success, 1 the user cancelled, 2 other).
The Response can arrive before the method's reply, so the match rules are added first and every
message that is not the awaited reply is kept for the loop.

All D-Bus traffic is on one thread, "global-key", over its own connection (jeepney, pure Python);
its callbacks only post press/release to the runtime's control queue, like the X11 listener's.
"""

from __future__ import annotations

import collections
import logging
import secrets
import threading
import time
from typing import Callable

from jeepney import DBusAddress, HeaderFields, MatchRule, MessageType, new_method_call
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import DBusConnection, open_dbus_connection

log = logging.getLogger(__name__)

PORTAL = DBusAddress("/org/freedesktop/portal/desktop", bus_name="org.freedesktop.portal.Desktop")
SHORTCUTS = "org.freedesktop.portal.GlobalShortcuts"
REQUEST = "org.freedesktop.portal.Request"
SESSION = "org.freedesktop.portal.Session"
SHORTCUT_ID = "push-to-talk"
CALL_TIMEOUT_S = 2.0  # one method call's reply
SESSION_TIMEOUT_S = 5.0  # CreateSession's Response: no dialog is involved
POLL_S = 0.1  # how often the listening thread looks whether it should stop

# Qt's key names -> the keysym names of the XDG shortcuts specification's triggers.
KEYSYMS = {
    "Space": "space",
    "Ins": "Insert",
    "Insert": "Insert",
    "Pause": "Pause",
    "ScrollLock": "Scroll_Lock",
    "Menu": "Menu",
    "Home": "Home",
    "End": "End",
    "PgUp": "Page_Up",
    "PgDown": "Page_Down",
    "CapsLock": "Caps_Lock",
    "NumLock": "Num_Lock",
    "Print": "Print",
    "Del": "Delete",
    "Backspace": "BackSpace",
    "Left": "Left",
    "Right": "Right",
    "Up": "Up",
    "Down": "Down",
}
RESPONSES = {1: "you cancelled it", 2: "the desktop refused it"}


class PortalError(RuntimeError):
    """The portal is missing, did not answer, or refused."""


def trigger(name: str) -> str:
    """The XDG shortcuts trigger for a Qt key name ("F8" -> "F8", "PgUp" -> "Page_Up", "X" -> "x")."""
    if name in KEYSYMS:
        return KEYSYMS[name]
    return name.lower() if len(name) == 1 else name


def portal_version(timeout: float = CALL_TIMEOUT_S) -> int:
    """The GlobalShortcuts interface's version on the session bus (PortalError when there is none)."""
    try:
        with open_dbus_connection("SESSION") as conn:
            get = new_method_call(
                PORTAL.with_interface("org.freedesktop.DBus.Properties"), "Get", "ss", (SHORTCUTS, "version")
            )
            reply = conn.send_and_get_reply(get, timeout=timeout)
    except (OSError, KeyError, ValueError, RuntimeError, TimeoutError) as exc:  # no bus address or socket, no answer
        raise PortalError(f"no session bus ({type(exc).__name__}: {exc})") from exc
    if reply.header.message_type == MessageType.error:
        raise PortalError(f"{reply.header.fields.get(HeaderFields.error_name)}: {reply.body}")
    _signature, version = reply.body[0]
    return int(version)


def _sender_path(unique_name: str) -> str:
    """A bus name as the portal puts it in object paths: ":1.42" -> "1_42"."""
    return unique_name.lstrip(":").replace(".", "_")


class PortalKey:
    """Calls `on_press` on the portal's Activated and `on_release` on Deactivated for the bound
    push-to-talk shortcut, on the thread "global-key". `start` returns once the portal has made a
    session; the binding is answered later (the desktop may show a dialog): `bound` is set then,
    with the trigger the desktop chose in `trigger_description`; a refusal, or the desktop closing
    the session later, calls `on_problem` with the reason (on the same thread) and releases a held
    key."""

    def __init__(
        self,
        name: str,
        on_press: Callable[[], None],
        on_release: Callable[[], None],
        on_problem: Callable[[str], None] = lambda _why: None,
    ) -> None:
        self.name = name
        self._on_press, self._on_release, self._on_problem = on_press, on_release, on_problem
        self._down = False
        self._stopping = threading.Event()
        self._started = threading.Event()
        self.bound = threading.Event()
        self.trigger_description = ""
        self.problem: str | None = None
        self._conn: DBusConnection | None = None
        self._session = ""
        self._backlog: collections.deque = collections.deque()
        self._thread = threading.Thread(target=self._run, name="global-key", daemon=True)

    # ---- the caller's side ----------------------------------------------------------------------

    def start(self) -> "PortalKey":
        """Connect and make the session (PortalError, with the reason, when that fails)."""
        self._thread.start()
        if not self._started.wait(SESSION_TIMEOUT_S + CALL_TIMEOUT_S + 1):
            self.stop()
            raise PortalError("the desktop's shortcut portal did not answer")
        if not self._session:
            self._thread.join(timeout=2)
            raise PortalError(self.problem or "the desktop's shortcut portal made no session")
        return self

    def stop(self) -> None:
        """Close the session and stop listening (a key held now is released); the thread has
        ended when this returns (within 2 s)."""
        self._stopping.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
            if self._thread.is_alive():
                log.warning("the portal key's thread did not end within 2 s")
        self._release()

    # ---- the "global-key" thread -----------------------------------------------------------

    @property
    def _bus(self) -> DBusConnection:
        """The session bus connection: open from the start of `_run` until `_close`."""
        assert self._conn is not None
        return self._conn

    def _run(self) -> None:
        try:
            self._conn = open_dbus_connection("SESSION")
        except (OSError, KeyError, ValueError, RuntimeError, TimeoutError) as exc:
            self.problem = f"no session bus ({type(exc).__name__}: {exc})"
            self._started.set()
            return
        try:
            self._open_session()
            self._started.set()
            self._bind()
            while not self._stopping.is_set():
                message = self._next(POLL_S)
                if message is not None:
                    self._dispatch(message)
        except PortalError as exc:
            self._fail(str(exc))
        except Exception as exc:  # the connection broke, or an answer not shaped as the interface says
            log.warning("the portal key's thread failed", exc_info=True)
            self._fail(f"{type(exc).__name__}: {exc}")
        finally:
            self._started.set()
            self._release()
            self._close()

    def _open_session(self) -> None:
        me = _sender_path(self._bus.unique_name)
        token = "vc" + secrets.token_hex(6)
        # Signals from the portal: Responses, Activated/Deactivated, the session's Closed.
        for interface in (REQUEST, SHORTCUTS, SESSION):
            self._call(
                new_method_call(
                    message_bus, "AddMatch", "s", (MatchRule(type="signal", interface=interface).serialise(),)
                )
            )
        options = {"handle_token": ("s", token), "session_handle_token": ("s", token)}
        results = self._request(
            new_method_call(PORTAL.with_interface(SHORTCUTS), "CreateSession", "a{sv}", (options,)),
            token,
            "made no session",
        )
        # Returned as a string (older portals) or an object path; the path the token predicts if absent.
        self._session = (
            results.get("session_handle", ("s", ""))[1] or f"/org/freedesktop/portal/desktop/session/{me}/{token}"
        )

    def _bind(self) -> None:
        token = "vc" + secrets.token_hex(6)
        shortcut = (
            SHORTCUT_ID,
            {
                "description": ("s", "Push to talk: hold to speak to Voice Companion"),
                "preferred_trigger": ("s", trigger(self.name)),
            },
        )
        results = self._request(
            new_method_call(
                PORTAL.with_interface(SHORTCUTS),
                "BindShortcuts",
                "oa(sa{sv})sa{sv}",
                (self._session, [shortcut], "", {"handle_token": ("s", token)}),
            ),
            token,
            "did not bind the key",
            timeout=None,
        )
        bound = {sid: props for sid, props in results.get("shortcuts", ("a(sa{sv})", []))[1]}
        if SHORTCUT_ID not in bound:
            raise PortalError("the desktop did not bind the push-to-talk shortcut")
        self._bound_as(bound[SHORTCUT_ID])
        log.info("global push-to-talk through the portal: %s", self.trigger_description or "(no key yet)")
        self.bound.set()

    def _bound_as(self, props: dict) -> None:
        self.trigger_description = props.get("trigger_description", ("s", ""))[1]

    def _request(self, call, token: str, what: str, timeout: float | None = SESSION_TIMEOUT_S) -> dict:
        """Call a portal method and wait for its Request's Response (`timeout` None: until stopped,
        since the desktop may be waiting for the user); the results, or PortalError."""
        reply = self._call(call)
        handle = reply.body[0] if reply.body else ""
        expected = f"/org/freedesktop/portal/desktop/request/{_sender_path(self._bus.unique_name)}/{token}"
        paths = {handle, expected}
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._stopping.is_set():
            if deadline is not None and time.monotonic() > deadline:
                raise PortalError(f"the desktop's shortcut portal {what} (no answer in {timeout:.0f} s)")
            message = self._next(POLL_S, keep=lambda m: not self._is_signal(m, REQUEST, "Response", paths))
            if message is not None:
                code, results = message.body
                if code != 0:
                    raise PortalError(
                        f"the desktop's shortcut portal {what}: {RESPONSES.get(code, f'response {code}')}"
                    )
                return results
        raise PortalError("stopped")

    def _call(self, message):
        """Send a method call and return its reply; other messages meanwhile wait in the backlog."""
        serial = next(self._bus.outgoing_serial)
        self._bus.send(message, serial=serial)
        deadline = time.monotonic() + CALL_TIMEOUT_S
        while True:
            try:
                incoming = self._bus.receive(timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise PortalError(
                    f"no answer to {message.header.fields.get(HeaderFields.member)} in {CALL_TIMEOUT_S:.0f} s"
                ) from None
            if incoming.header.fields.get(HeaderFields.reply_serial) == serial:
                if incoming.header.message_type == MessageType.error:
                    name = incoming.header.fields.get(HeaderFields.error_name)
                    raise PortalError(f"{name}: {' '.join(map(str, incoming.body))}")
                return incoming
            self._backlog.append(incoming)

    def _next(self, timeout: float, keep=lambda _m: False):
        """The next message (from the backlog first), or None after `timeout`; messages `keep`
        says to keep for later go back to the backlog."""
        for _ in range(len(self._backlog)):
            message = self._backlog.popleft()
            if not keep(message):
                return message
            self._backlog.append(message)
        try:
            message = self._bus.receive(timeout=timeout)
        except TimeoutError:
            return None
        if keep(message):
            self._backlog.append(message)
            return None
        return message

    @staticmethod
    def _is_signal(message, interface: str, member: str, paths: set[str] | None = None) -> bool:
        fields = message.header.fields
        return (
            message.header.message_type == MessageType.signal
            and fields.get(HeaderFields.interface) == interface
            and fields.get(HeaderFields.member) == member
            and (paths is None or fields.get(HeaderFields.path) in paths)
        )

    def _dispatch(self, message) -> None:
        if self._is_signal(message, SESSION, "Closed", {self._session}):
            self._session = ""
            raise PortalError("the desktop ended the global shortcut session")
        if self._is_signal(message, SHORTCUTS, "ShortcutsChanged") and message.body[0] == self._session:
            for sid, props in message.body[1]:  # the user gave the shortcut another key
                if sid == SHORTCUT_ID:
                    self._bound_as(props)
        for member, handler in (("Activated", self._press), ("Deactivated", self._release)):
            if self._is_signal(message, SHORTCUTS, member):
                session, shortcut_id = message.body[0], message.body[1]
                if session == self._session and shortcut_id == SHORTCUT_ID:
                    handler()

    def _press(self) -> None:
        if not self._down:
            self._down = True
            self._on_press()

    def _release(self) -> None:
        if self._down:
            self._down = False
            self._on_release()

    def _fail(self, why: str) -> None:
        if self._stopping.is_set():
            return
        log.warning("the global push-to-talk key through the portal: %s", why)
        self.problem = why
        if self._started.is_set():
            self._on_problem(why)

    def _close(self) -> None:
        if self._conn is None:
            return
        try:
            if self._session:
                self._conn.send(
                    new_method_call(DBusAddress(self._session, bus_name=PORTAL.bus_name, interface=SESSION), "Close")
                )
        except OSError:
            log.info("could not close the portal session", exc_info=True)
        self._conn.close()
        self._conn = None
