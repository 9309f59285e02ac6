"""Audio devices: the lock-free ring buffer, device lookup, and a real PortAudio round trip through a
PulseAudio null sink (what the speaker plays comes back from the sink's monitor as the microphone)."""

import importlib.abc
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core.audio.devices import DeviceError, DeviceInfo, Microphone, Speaker, find_device, list_devices
from core.audio.ring import RingBuffer

ROOT = Path(__file__).resolve().parent.parent


# --- ring buffer ---------------------------------------------------------------------------------


def test_ring_wraps_around_in_order():
    ring = RingBuffer(8)
    assert ring.write(np.arange(5, dtype=np.float32)) == 5
    out = np.empty(3, np.float32)
    assert ring.read_into(out) == 3 and out.tolist() == [0, 1, 2]
    assert ring.write(np.arange(5, 10, dtype=np.float32)) == 5  # crosses the end of the array
    out = np.empty(7, np.float32)
    assert ring.read_into(out) == 7 and out.tolist() == [3, 4, 5, 6, 7, 8, 9]
    assert (ring.available, ring.free, ring.overruns, ring.underruns) == (0, 8, 0, 0)


def test_ring_counts_overruns_and_keeps_what_fit():
    ring = RingBuffer(8)
    assert ring.write(np.arange(10, dtype=np.float32)) == 8
    assert ring.write(np.ones(1, np.float32)) == 0
    assert ring.overruns == 2 and ring.free == 0
    out = np.empty(8, np.float32)
    ring.read_into(out)
    assert out.tolist() == list(range(8))


def test_ring_underrun_zero_fills_and_counts_only_when_expecting():
    ring = RingBuffer(8)
    ring.write(np.array([1, 2], np.float32))
    out = np.full(4, 9, np.float32)
    assert ring.read_into(out) == 2 and out.tolist() == [1, 2, 0, 0]
    assert ring.underruns == 0  # an idle stream running dry is not a gap
    ring.expecting = True
    assert ring.read_into(out) == 0 and out.tolist() == [0, 0, 0, 0]
    assert ring.underruns == 1


def test_ring_clear_drops_queued_audio_but_not_what_came_after_the_mark():
    ring = RingBuffer(16)
    ring.write(np.ones(6, np.float32))
    mark = ring.total_written  # the producer asks for a flush here...
    ring.write(np.full(3, 2, np.float32))  # ...and goes on writing before the consumer acts on it
    ring.clear(mark)
    out = np.empty(3, np.float32)
    assert ring.available == 3 and ring.read_into(out) == 3 and out.tolist() == [2, 2, 2]
    ring.write(np.ones(5, np.float32))
    ring.clear()
    assert ring.available == 0 and ring.free == 16


def test_ring_two_threads_deliver_every_sample_in_order():
    total, ring = 400_000, RingBuffer(1024)
    source = np.arange(total, dtype=np.float32)  # exact integers in float32 up to 2**24
    received = np.empty(total, np.float32)
    rng = np.random.default_rng(0)
    write_sizes, read_sizes = rng.integers(1, 700, 4000), rng.integers(1, 700, 4000)

    def produce():
        pos, i = 0, 0
        while pos < total:
            n = int(write_sizes[i % len(write_sizes)])
            i += 1
            pos += ring.write(source[pos : pos + n])

    def consume():
        pos, i = 0, 0
        while pos < total:
            out = np.empty(int(read_sizes[i % len(read_sizes)]), np.float32)
            i += 1
            got = ring.read_into(out)
            received[pos : pos + got] = out[:got]
            pos += got

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # hand the GIL over often, so the threads interleave mid-call
    try:
        threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        sys.setswitchinterval(interval)
    assert not any(t.is_alive() for t in threads)
    np.testing.assert_array_equal(received, source)
    assert ring.overruns > 0  # the producer really did outrun the consumer at times


# --- device lookup ---------------------------------------------------------------------------------

FAKE_DEVICES = [
    DeviceInfo(0, "HDA Intel PCH: ALC1150 Analog (hw:0,0)", "ALSA", 2, 2, 48000.0, False, False),
    DeviceInfo(1, "USB Audio: Headset (hw:1,0)", "ALSA", 1, 2, 48000.0, False, False),
    DeviceInfo(2, "HDMI 0 (hw:2,3)", "ALSA", 0, 8, 48000.0, False, False),
    DeviceInfo(3, "pulse", "ALSA", 32, 32, 44100.0, True, True),
]


def test_find_device_by_exact_name_index_part_or_default(monkeypatch):
    monkeypatch.setattr("core.audio.devices.list_devices", lambda: FAKE_DEVICES)
    assert find_device(None, "input").name == "pulse"
    assert find_device("pulse", "output").index == 3
    assert find_device("1", "input").index == 1  # an index, although "hw:0,0" ... "ALC1150" contain a 1
    assert find_device("headset", "input").index == 1
    assert find_device("hdmi", "output").index == 2
    with pytest.raises(DeviceError) as err:
        find_device("hdmi", "input")  # it has no input channels
    assert "'hdmi'" in str(err.value) and "'pulse'" in str(err.value) and "HDMI 0" not in str(err.value)


@pytest.mark.parametrize("name", ["²", "¹", "①"])
def test_a_name_of_digit_like_characters_is_a_device_not_found_not_a_crash(monkeypatch, name):
    # str.isdigit() says yes to these, int() refuses them: the lookup must say "not found", which is
    # what the microphone and speaker fall back to the default on.
    monkeypatch.setattr("core.audio.devices.list_devices", lambda: FAKE_DEVICES)
    with pytest.raises(DeviceError, match="no input device named"):
        find_device(name, "input")


def test_missing_portaudio_is_one_line_naming_the_package(monkeypatch, capsys):
    class NoPortAudio(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "sounddevice":  # what sounddevice's import raises when it cannot load the library
                raise OSError("PortAudio library not found")
            return None

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [NoPortAudio(), *sys.meta_path])
    with pytest.raises(DeviceError, match="libportaudio2"):
        list_devices()
    from app.cli import main

    assert main(["devices"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "libportaudio2" in lines[0] and "portaudio" in lines[0]


# --- real devices through PulseAudio ------------------------------------------------------------------


def record(mic: Microphone, seconds: float) -> np.ndarray:
    n = int(seconds * mic.rate)
    parts, got = [], 0
    while got < n:
        quiet = f"the microphone went quiet after {got} samples"
        assert mic.wait(min(n - got, mic.rate // 100), timeout=2.0), quiet
        part = mic.read(n - got)
        parts.append(part)
        got += len(part)
    return np.concatenate(parts)


def tone(rate: int, seconds: float, hz: float = 440.0, amplitude: float = 0.3) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * hz * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def peak_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), n=1 << 18))
    return float(np.argmax(spectrum) * rate / (1 << 18))


def test_pulse_device_is_listed(pulse):
    names = [d.name for d in list_devices()]
    assert "pulse" in names, names


def test_tone_played_on_the_speaker_comes_back_on_the_microphone(pulse):
    notices = []
    speaker, mic = Speaker("pulse", on_notice=notices.append), Microphone("pulse", on_notice=notices.append)
    assert speaker.device.name == mic.device.name == "pulse"
    with mic, speaker:
        floor = record(mic, 0.2)
        speaker.write(tone(speaker.rate, 0.6))
        speaker.finish_audio()
        heard = record(mic, 0.9)
        latencies = mic.latency, speaker.latency
    assert not notices
    frame = mic.rate // 100
    frames = np.array([rms(heard[i : i + frame]) for i in range(0, len(heard) - frame + 1, frame)])
    loud = np.flatnonzero(frames > 0.5 * frames.max())
    assert len(loud) == loud[-1] - loud[0] + 1, "the tone came back with gaps"
    assert abs(len(loud) * 10 - 600) <= 30, f"{len(loud) * 10} ms of tone came back, 600 ms played"
    middle = heard[(loud[0] + 10) * frame : (loud[-1] - 10) * frame]
    assert rms(floor) < 1e-3 and 0.19 < rms(middle) < 0.23, (rms(floor), rms(middle))  # 0.3 peak: 0.212 RMS
    assert abs(peak_hz(middle, mic.rate) - 440.0) < 2.0, peak_hz(middle, mic.rate)
    assert 0 <= latencies[0] < 0.5 and 0 < latencies[1] < 0.5, latencies


def test_flush_silences_the_speaker_at_once(pulse):
    speaker, mic = Speaker("pulse"), Microphone("pulse")
    with mic, speaker:
        record(mic, 0.05)
        speaker.write(tone(speaker.rate, 1.5))
        before = record(mic, 0.4)
        speaker.flush()
        assert speaker.queued == 0
        after = record(mic, 0.4)
        speaker.write(tone(speaker.rate, 0.2))  # audio written after a flush plays again
        again = record(mic, 1.0)  # a loaded machine can start it late: the tone is looked for over a second
    assert rms(before[-mic.rate // 10 :]) > 0.1
    # Only what PortAudio and the server already held may still sound after the flush.
    assert rms(after[int(0.15 * mic.rate) :]) < 1e-3, rms(after[int(0.15 * mic.rate) :])
    assert rms(again) > 0.05


@pytest.mark.parametrize("device_class", [Microphone, Speaker])
def test_unknown_device_falls_back_to_the_default_with_a_notice(pulse, device_class):
    notices = []
    with device_class("no such device", on_notice=notices.append) as device:
        assert device.device.is_default(device.kind)
        if isinstance(device, Microphone):
            assert device.wait(device.rate // 20, timeout=2.0)
    assert len(notices) == 1 and "'no such device'" in notices[0] and "default" in notices[0], notices


def test_lost_device_reopens_the_default_with_a_notice(pulse):
    notices = []
    with Microphone("pulse", on_notice=notices.append) as mic:
        assert mic.wait(mic.rate // 20, timeout=2.0)
        listing = subprocess.run(["pacmd", "list-source-outputs"], capture_output=True, text=True, check=True).stdout
        ours = [
            block.split()[0]
            for block in listing.split("index: ")[1:]
            if f'application.process.id = "{os.getpid()}"' in block
        ]
        assert len(ours) == 1, listing
        subprocess.run(["pacmd", "kill-source-output", ours[0]], check=True, capture_output=True)
        deadline = time.monotonic() + 5.0
        while not notices and time.monotonic() < deadline:
            time.sleep(0.02)
        assert notices, "no notice within 5 s of losing the device"
        mic.read(mic.available)
        assert mic.wait(mic.rate // 20, timeout=2.0), "no audio after the fallback"
    assert mic.device.name == "default"
    assert "'pulse'" in notices[0] and "'default'" in notices[0], notices


def test_devices_command_lists_the_pulse_device(pulse, capsys):
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "devices", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    devices = shown["audio"]
    assert set(shown["compute"]["models"]) >= {"chat_llm", "omni_llm", "omni_encoder", "snac", "asr", "tts"}
    pulse_device = next(d for d in devices if d["name"] == "pulse")
    assert pulse_device["max_input_channels"] > 0 and pulse_device["max_output_channels"] > 0
    assert set(pulse_device) == {
        "index",
        "name",
        "host_api",
        "max_input_channels",
        "max_output_channels",
        "default_rate",
        "is_default_input",
        "is_default_output",
    }
    from app.cli import main

    assert main(["devices"]) == 0
    text = capsys.readouterr().out
    assert "Microphones:" in text and "Speakers:" in text and " pulse " in text and " * " in text
    assert "Models (compute setting:" in text and "omni_encoder: " in text
