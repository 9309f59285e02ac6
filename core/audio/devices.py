"""Real microphones and speakers through PortAudio (sounddevice).

The device callbacks only move samples between PortAudio and a RingBuffer: the audio worker reads
the microphone's ring and fills the speaker's, each at the device's own rate. Nothing in a callback
waits, logs or allocates beyond a one-time scratch buffer.

A device that goes away must not end the conversation: a watchdog thread per stream notices a stream
that stopped or stalled, reopens the default device and says so through `on_notice`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Literal, Self

import numpy as np

from core.audio.ring import RingBuffer

log = logging.getLogger(__name__)

Kind = Literal["input", "output"]

MISSING_PORTAUDIO = (
    "the PortAudio audio library is missing: install the system package libportaudio2 "
    "(Debian/Ubuntu) or portaudio (Homebrew, Fedora)"
)
# Device buffering asked of PortAudio. Through the PulseAudio ALSA plugin (how most Linux desktops
# reach their sound server) 20-40 ms streams fell into underrun storms as they started, 50 ms never
# did; it also leaves the Python callbacks room to wait for the GIL behind the worker and engines.
SUGGESTED_LATENCY = 0.05
# A live stream calls back every few ms; this long without one means the device is gone even when
# PortAudio reports nothing (ALSA often just stops delivering when a USB device is pulled).
STALL_SECONDS = 3.0
WATCH_PERIOD = 0.2


class DeviceError(RuntimeError):
    """An audio device problem the user can act on; the message is one line."""


def _sounddevice() -> ModuleType:
    """sounddevice, imported late: its import loads the PortAudio C library and fails without it."""
    try:
        import sounddevice
    except OSError as error:  # the cause names the library that did not load
        raise DeviceError(MISSING_PORTAUDIO) from error
    return sounddevice


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    host_api: str
    max_input_channels: int
    max_output_channels: int
    default_rate: float
    is_default_input: bool
    is_default_output: bool

    def channels(self, kind: Kind) -> int:
        return self.max_input_channels if kind == "input" else self.max_output_channels

    def is_default(self, kind: Kind) -> bool:
        return self.is_default_input if kind == "input" else self.is_default_output


def _default_index(sd: ModuleType, kind: Kind) -> int | None:
    try:
        return sd.query_devices(kind=kind)["index"]
    except sd.PortAudioError:  # PortAudio has no default of this kind: no such device at all
        log.info("no default %s device", kind, exc_info=True)
        return None


def list_devices() -> list[DeviceInfo]:
    sd = _sounddevice()
    host_apis = sd.query_hostapis()
    default_in, default_out = _default_index(sd, "input"), _default_index(sd, "output")
    return [
        DeviceInfo(
            index=d["index"],
            name=d["name"],
            host_api=host_apis[d["hostapi"]]["name"],
            max_input_channels=d["max_input_channels"],
            max_output_channels=d["max_output_channels"],
            default_rate=float(d["default_samplerate"]),
            is_default_input=d["index"] == default_in,
            is_default_output=d["index"] == default_out,
        )
        for d in sd.query_devices()
    ]


def find_device(name: str | None, kind: Kind) -> DeviceInfo:
    """The device of this kind called `name`: exact name, else its index, else a case-insensitive
    part of its name (the first in PortAudio's order). None is the system's default.

    The index comes before the partial name because ALSA names are full of digits ("hw:1,0"), which
    would swallow any index typed as a partial name."""
    devices = [d for d in list_devices() if d.channels(kind) > 0]
    if name is None:
        for d in devices:
            if d.is_default(kind):
                return d
        raise DeviceError(f"no {kind} device found")
    matches = (
        [d for d in devices if d.name == name]
        or [d for d in devices if name.strip().isdecimal() and d.index == int(name)]  # "²" is a digit, not a number
        or [d for d in devices if name.casefold() in d.name.casefold()]
    )
    if matches:
        return matches[0]
    available = ", ".join(repr(d.name) for d in devices) or "none"
    raise DeviceError(f"no {kind} device named {name!r} (available: {available})")


def _log_notice(message: str) -> None:
    log.warning(message)


class _DeviceStream:
    """What a microphone and a speaker share: opening with a fallback to the default device, the
    watchdog that reopens a lost device, status counts and the latency estimate. Subclasses give the
    PortAudio stream class and the callback."""

    kind: Kind
    label: str  # what the user calls it, for notices

    def __init__(
        self, device: str | None, on_notice: Callable[[str], None] | None, buffer_seconds: float, latency: float
    ) -> None:
        self._sd = _sounddevice()
        self._notice = on_notice or _log_notice
        self._suggested_latency = latency
        try:
            self.device = find_device(device, self.kind)
        except DeviceError as exc:
            if device is None:
                raise
            log.warning("%s %r not found; trying the default", self.label, device, exc_info=True)
            self.device = find_device(None, self.kind)
            self._notice(f"{exc}; using the default {self.label}, {self.device.name!r}")
        self.rate = int(self.device.default_rate)
        self.ring = RingBuffer(max(1, int(buffer_seconds * self.rate)))
        # Seconds between the callback and the samples at the converter, from PortAudio's own clock;
        # a plain float so the worker can read it any time (the echo canceller's delay hint).
        self.latency = 0.0
        self._device_underflows = 0  # from PortAudio's status flags; callback only
        self._device_overflows = 0
        self._callbacks = 0  # callback only: the watchdog's proof of life
        self._stream = None
        self._running = False
        self._lifecycle = threading.Lock()  # start/stop against the watchdog; never taken in a callback
        self._wake = threading.Event()
        self._watchdog: threading.Thread | None = None

    @property
    def underruns(self) -> int:
        return self.ring.underruns + self._device_underflows

    @property
    def overruns(self) -> int:
        return self.ring.overruns + self._device_overflows

    def start(self) -> Self:
        with self._lifecycle:
            if self._running:
                return self
            self._wake.clear()
            try:
                self._stream = self._open(self.device, self.rate)
            except self._sd.PortAudioError as exc:
                log.warning("could not open the %s %r", self.label, self.device.name, exc_info=True)
                if self.device.is_default(self.kind):
                    raise DeviceError(f"could not open the {self.label} {self.device.name!r}: {exc}") from None
                failed = self.device
                if not self._open_default():
                    raise DeviceError(
                        f"could not open the {self.label} {failed.name!r} ({exc}) nor the default one"
                    ) from None
                self._notice(
                    f"could not open the {self.label} {failed.name!r} ({exc}); using the default, {self.device.name!r}"
                )
            self._running = True
        self._watchdog = threading.Thread(target=self._watch, name=f"{self.label}-watchdog", daemon=True)
        self._watchdog.start()
        return self

    def stop(self) -> None:
        with self._lifecycle:
            self._running = False
        self._wake.set()
        if self._watchdog is not None:
            self._watchdog.join()
            self._watchdog = None
        with self._lifecycle:
            self._close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _stream_class(self) -> type:
        raise NotImplementedError

    def _callback(self, data: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        raise NotImplementedError

    def _open(self, device: DeviceInfo, rate: int) -> Any:
        stream = self._stream_class()(
            device=device.index,
            samplerate=rate,
            channels=min(2, device.channels(self.kind)),
            dtype="float32",
            latency=self._suggested_latency,
            callback=self._callback,
            finished_callback=self._wake.set,
        )
        try:
            stream.start()
        except BaseException:
            stream.close()
            raise
        self.latency = stream.latency  # PortAudio's estimate until the first callback measures it
        return stream

    def _open_default(self) -> bool:
        """Open the default device, at the current rate if it takes it so the worker need not
        change; True on success (then `device`, maybe `rate`, describe the new stream)."""
        try:
            default = find_device(None, self.kind)
        except DeviceError:
            log.warning("no default %s to fall back on", self.label, exc_info=True)
            return False
        for rate in dict.fromkeys([self.rate, int(default.default_rate)]):
            try:
                self._stream = self._open(default, rate)
            except self._sd.PortAudioError:
                log.info("the default %s %r does not open at %d Hz", self.label, default.name, rate, exc_info=True)
                continue
            self.device, self.rate = default, rate
            return True
        return False

    def _close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:  # a vanished device may fail to stop cleanly; it is being dropped either way
            stream.abort()
            stream.close()
        except self._sd.PortAudioError:
            log.info("the %s stream did not close cleanly", self.label, exc_info=True)

    def _is_active(self, stream: Any) -> bool:
        try:
            return stream.active
        except self._sd.PortAudioError:  # PortAudio cannot even tell: the stream is as good as gone
            log.warning("the %s stream cannot be queried", self.label, exc_info=True)
            return False

    def _count_status(self, status: Any) -> None:
        if status.input_underflow or status.output_underflow:
            self._device_underflows += 1
        if status.input_overflow or status.output_overflow:
            self._device_overflows += 1

    def _note_latency(self, seconds: float, now: float) -> None:
        # Some host APIs leave the timestamps at zero; a zero or absurd value is no measurement.
        if now > 0 and 0 < seconds < 1:
            self.latency = seconds

    def _watch(self) -> None:
        seen, last_alive = self._callbacks, time.monotonic()
        while True:
            self._wake.wait(WATCH_PERIOD)
            self._wake.clear()
            now = time.monotonic()
            if self._callbacks != seen:
                seen, last_alive = self._callbacks, now
            with self._lifecycle:
                if not self._running:
                    return
                stream = self._stream
                if stream is not None and self._is_active(stream) and now - last_alive < STALL_SECONDS:
                    continue
                lost = self.device
                was_open = stream is not None
                self._close()
                recovered = self._open_default()
            if recovered:
                seen, last_alive = self._callbacks, time.monotonic()
                self._notice(
                    f"the {self.label} {lost.name!r} stopped working; "
                    f"switched to the default, {self.device.name!r} ({self.rate} Hz)"
                )
            elif was_open:  # say it once; keep retrying quietly every period
                self._notice(
                    f"the {self.label} {lost.name!r} stopped working and no other {self.label} opens; retrying"
                )


class Microphone(_DeviceStream):
    """Captures mono float32 at `rate` (the device's own) into `ring`; the worker takes it with
    `read` or `wait`."""

    kind = "input"
    label = "microphone"

    def __init__(
        self,
        device: str | None = None,
        *,
        on_notice: Callable[[str], None] | None = None,
        buffer_seconds: float = 2.0,
        latency: float = SUGGESTED_LATENCY,
    ) -> None:
        super().__init__(device, on_notice, buffer_seconds, latency)
        self._downmix = np.zeros(self.rate // 10, np.float32)
        self._arrived = threading.Event()

    @property
    def available(self) -> int:
        return self.ring.available

    def read(self, n: int) -> np.ndarray:
        """Worker: up to n captured samples, only what has arrived (never padded)."""
        out = np.empty(min(n, self.ring.available), np.float32)
        self.ring.read_into(out)
        return out

    def wait(self, n: int, timeout: float) -> bool:
        """Worker: block until n samples are there or `timeout` seconds pass; True if they are."""
        deadline = time.monotonic() + timeout
        while self.ring.available < n:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._arrived.wait(left)
            self._arrived.clear()
        return True

    def _stream_class(self) -> type:
        return self._sd.InputStream

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        self._callbacks += 1
        if status:
            self._count_status(status)
        self._note_latency(time_info.currentTime - time_info.inputBufferAdcTime, time_info.currentTime)
        if indata.shape[1] == 1:
            self.ring.write(indata[:, 0])
        else:
            if frames > len(self._downmix):  # only for a device with unusually large blocks, once
                self._downmix = np.zeros(frames, np.float32)
            mono = self._downmix[:frames]
            np.mean(indata, axis=1, out=mono)
            self.ring.write(mono)
        self._arrived.set()


class Speaker(_DeviceStream):
    """Plays mono float32 at `rate` (the device's own) from `ring`, which the worker fills with
    `write`; the same samples go to every output channel."""

    kind = "output"
    label = "speaker"

    def __init__(
        self,
        device: str | None = None,
        *,
        on_notice: Callable[[str], None] | None = None,
        buffer_seconds: float = 2.0,
        latency: float = SUGGESTED_LATENCY,
    ) -> None:
        super().__init__(device, on_notice, buffer_seconds, latency)
        # The worker cannot move the ring's read position itself (the callback owns it), so a flush
        # records where the written stream stood and the callback drops up to there.
        self._flush_mark = 0

    @property
    def queued(self) -> int:
        """Samples written and not yet played nor flushed."""
        return max(0, self.ring.total_written - max(self.ring.total_read, self._flush_mark))

    def write(self, samples: np.ndarray) -> int:
        """Worker: queue samples at `rate`; returns how many fit (the rest counts as an overrun)."""
        self.ring.expecting = True
        return self.ring.write(samples)

    def finish_audio(self) -> None:
        """Worker: nothing more is coming for now, so the queue running dry is the end of the audio,
        not an underrun."""
        self.ring.expecting = False

    def flush(self) -> None:
        """Worker: drop everything queued, at once (barge-in); audio written afterwards plays."""
        self.ring.expecting = False
        self._flush_mark = self.ring.total_written

    def _stream_class(self) -> type:
        return self._sd.OutputStream

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        self._callbacks += 1
        if status:
            self._count_status(status)
        self._note_latency(time_info.outputBufferDacTime - time_info.currentTime, time_info.currentTime)
        if self._flush_mark > self.ring.total_read:
            self.ring.clear(self._flush_mark)
        self.ring.read_into(outdata[:, 0])
        if outdata.shape[1] > 1:
            outdata[:, 1:] = outdata[:, :1]


class SystemDevices:
    """The machine's audio devices as the runtime sees them: listed, opened, and watched for
    change. Tests give the runtime their own (a machine without a microphone, then with one).

    PortAudio reads the device list once; `rescan` makes it read again, which is safe only while
    none of our streams is open. `signature` is cheap and opens nothing: on Linux the sound card
    nodes and the sound server's sockets, so a microphone plugged in or a sound server started
    changes it; elsewhere it never changes (the list is read again when the audio is reopened)."""

    def list(self) -> list[DeviceInfo]:
        return list_devices()

    def signature(self) -> object:
        import os
        import sys

        if not sys.platform.startswith("linux"):
            return None
        cards = sorted(os.listdir("/dev/snd")) if os.path.isdir("/dev/snd") else []
        runtime_dir = os.environ.get("XDG_RUNTIME_DIR", "")
        servers = [os.path.exists(os.path.join(runtime_dir, name)) for name in ("pulse/native", "pipewire-0")]
        return cards, servers, os.environ.get("PULSE_SERVER")

    def rescan(self) -> None:
        sd = _sounddevice()
        sd._terminate()
        sd._initialize()

    def microphone(self, name: str | None, on_notice: Callable[[str], None]) -> "Microphone":
        return Microphone(name, on_notice=on_notice)

    def speaker(self, name: str | None, on_notice: Callable[[str], None]) -> "Speaker":
        return Speaker(name, on_notice=on_notice)
