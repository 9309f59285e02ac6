"""Keeping the app off the network, except while a download the user asked for runs.

`stay_offline()` runs first thing at start-up. It tells every library that could reach a server on
its own (the Hugging Face hub client, and through it anything built on it) to stay local, and
turns off onnxruntime's telemetry. `online()` lifts the hub's offline switch around an explicit
`models install` or `models pin` and puts it back after. Nothing else in the app opens a socket
(tests/test_offline.py proves it inside a network namespace with no interfaces).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",  # huggingface_hub: no request at all, files come from disk or fail
    "TRANSFORMERS_OFFLINE": "1",  # the same switch under its older name, read by the hub client too
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",  # a stored token is never sent unasked
    # onnxruntime (1.32) otherwise keeps a device id and a telemetry store in ~/.cache/Microsoft,
    # outside the app's data folder, where uninstalling the app would leave them.
    "ORT_DISABLE_TELEMETRY": "1",
}

_online_lock = threading.Lock()


def stay_offline() -> None:
    """Set the offline switches for this process and the processes it starts."""
    os.environ.update(OFFLINE_ENV)
    _set_hub_constant(True)
    quiet_onnxruntime()


def quiet_onnxruntime() -> None:
    """Turn off onnxruntime's telemetry (its ETW events on Windows; elsewhere the call changes
    nothing, as onnxruntime sends none). Only when onnxruntime is loaded already or about to be:
    importing it costs a second the commands that never use it need not spend."""
    ort = sys.modules.get("onnxruntime")
    if ort is None:
        return
    disable = getattr(ort, "disable_telemetry_events", None)
    if disable is not None:
        disable()


@contextmanager
def online() -> Iterator[None]:
    """The hub client may reach the network inside this block: only around a download the user
    asked for. One block at a time; the offline switches are back when it ends, however it ends."""
    with _online_lock:
        saved = {name: os.environ.get(name) for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
        for name in saved:
            os.environ.pop(name, None)
        _set_hub_constant(False)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is not None:
                    os.environ[name] = value
            _set_hub_constant(any(v == "1" for v in saved.values()))


def _set_hub_constant(offline: bool) -> None:
    # huggingface_hub reads HF_HUB_OFFLINE once, when it is imported, into this constant (which its
    # is_offline_mode() returns); once it is loaded, changing the environment alone does nothing.
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        vars(constants)["HF_HUB_OFFLINE"] = offline
