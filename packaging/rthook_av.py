"""PyInstaller runtime hook (build.spec): an empty `av` module when PyAV is not in the bundle.

faster-whisper imports PyAV when it is imported, only to decode audio files given by name; the
app hands it samples (numpy arrays), so the bundle leaves PyAV and its FFmpeg libraries out
(79 MB). Anything that does reach for PyAV gets an ImportError that says so.
"""

import sys
import types


def _install() -> None:
    try:
        import av  # noqa: F401
    except ImportError:
        stub = types.ModuleType("av")

        def missing(name: str):
            if name.startswith("__"):  # a probe of the module (hasattr(av, "__wrapped__")): no such thing
                raise AttributeError(name)
            raise ImportError(f"PyAV (av.{name}) is not in this bundle: the app decodes audio files with soundfile")

        stub.__getattr__ = missing  # type: ignore[method-assign]
        sys.modules["av"] = stub


_install()
