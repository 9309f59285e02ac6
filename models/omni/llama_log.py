"""llama.cpp logs every tensor it loads or quantizes to stderr; only its errors matter to a user."""

from __future__ import annotations

import ctypes
import sys

_QUIET = None
_GGML_LOG_ERROR = 4  # ggml_log_level: none, debug, info, warn, error, cont


def quiet_llama() -> None:
    """Route llama.cpp's log through a callback that prints errors only (once per process)."""
    global _QUIET
    import llama_cpp

    if _QUIET is None:

        @llama_cpp.llama_log_callback
        def quiet(level, text, user_data):  # noqa: ARG001
            if level == _GGML_LOG_ERROR:
                print(text.decode(errors="replace"), end="", file=sys.stderr, flush=True)

        _QUIET = quiet
        llama_cpp.llama_log_set(_QUIET, ctypes.c_void_p())
