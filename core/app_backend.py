"""Everything the desktop app drives, behind plain method calls that return at once.

The runtime owns the user's settings, presets, voice clips and conversation history on disk, the
models, and one conversation (real devices, or a simulated room for tests and screenshots). Slow
work (loading models, reopening devices, measuring a voice) runs in order on one control thread;
results and everything the conversation does come back as core events through `on_event`, from
whichever thread produced them. The GUI bridges those to its own thread.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import replace
from typing import Any, Callable

import numpy as np

from core.audio.room import RoomConfig
from core.engines import DEFAULT_ASR, DEFAULT_LLM
from core.style.voice_clips import engine_voice_profile
from core.style.voice_match import VoiceProfile
from core.audio.turn_end import TurnJudge, load_turn_judge
from core.audio.vad import load_vad
from core.wiring import LiveConversation, SimulatedConversation
from core.engines import load_engine as load_named_engine
from core import erase
from core.audio.devices import SystemDevices
from core.autostart import set_autostart
from core.events import (
    AudioStatus,
    CoreEvent,
    EngineReady,
    HistoryCleared,
    Mode,
    Notice,
    ReplyEnd,
    ReplyFinished,
    State,
    StateChanged,
    TurnLatency,
    UserTranscript,
)
from core.settings import HISTORY_KEPT, HistoryEntry, Settings, UserFiles, check_settings
from core.style.presets import PresetError, PresetStore, parse_preset
from core.style.resolve import style_from_preset
from core.style.voice_clips import clip_profile
from core.audio.vad import SileroVad
from models.engine import Capabilities, Engine, Message, Style
from models.registry import ModelStore, RegistryError
from models.registry.userfile import take_notices

DEFAULT_ASSETS = ("silero-vad", "smart-turn-v3.2", DEFAULT_ASR, DEFAULT_LLM, "piper-joe-medium")
log = logging.getLogger(__name__)
GREETING = "Hello! I'm listening. Ask me anything."
DEVICE_POLL_S = 3.0  # how often a conversation missing a device looks for one
NO_MICROPHONE = (
    "No microphone ({reason}). Type a question below: it is answered {how}. To talk, plug in "
    "a microphone or headset, choose one in Settings → Audio, or allow this app to use the "
    "microphone in your system's privacy settings; it is picked up as soon as it appears."
)
NO_SPEAKER = (
    "No speaker ({reason}): replies are shown as text only. One is picked up as soon as it "
    "appears, or choose one in Settings → Audio."
)

_ENGINE_KEYS = ("engine", "chat_model", "asr_model", "compute")
_AUDIO_KEYS = ("input_device", "output_device", "echo_cancellation", "noise_suppression", "gain_control")


def missing_assets(store: ModelStore, ids: tuple[str, ...] = DEFAULT_ASSETS) -> list[str]:
    """The default models that are not installed and verified yet (the first-run setup's list).
    Models inside an app bundle are not on it: they are checked when first loaded."""
    return [i for i in ids if not store.status(i).verified and not store.is_bundled(i)]


class Runtime:
    def __init__(
        self,
        on_event: Callable[[CoreEvent], None],
        files: UserFiles | None = None,
        store: ModelStore | None = None,
        simulated: bool = False,
        room: RoomConfig | None = RoomConfig(),
        load_engine: Callable[[Settings], Engine] | None = None,
        vad: SileroVad | None = None,
        devices: SystemDevices | None = None,
        device_poll_s: float = DEVICE_POLL_S,
    ) -> None:
        """`simulated`: a simulated laptop room instead of audio devices (see `speak`).
        `load_engine(settings)` and `vad` replace loading from the registry (tests share one);
        `devices` the machine's audio devices. A conversation without a microphone or speaker
        looks for one every `device_poll_s` seconds, on the control thread."""
        self.on_event = on_event
        self.files = files or UserFiles()
        self.store = store or ModelStore(self.files.root)
        self.presets = PresetStore(self.files.presets)
        self.simulated = simulated
        self.room = room
        self.devices = devices or SystemDevices()
        self.device_poll_s = device_poll_s
        self._device_signature: object = None  # what the device list looked like when the audio opened
        self.muted = False  # the microphone's hard mute; kept across reopened conversations
        self._startup_notices = []
        try:
            self.files.secure()
        except OSError as exc:  # a read-only data folder: the app runs, the user is told
            log.warning("could not make the data folder private", exc_info=True)
            self._startup_notices.append(f"could not make the data folder private ({exc.strerror or exc})")
        self.settings, settings_notice = self.files.load_settings()
        self.history, history_notice = self.files.load_history()
        self._startup_notices += [n for n in (settings_notice, history_notice) if n]
        recovered = self.presets.recover()
        self._startup_notices += recovered
        self._presets_kept_aside = bool(recovered)  # a preset gone with them was told about already
        self.store.assets()  # reads the registry's own files now, so damage to them is told at start
        self._startup_notices += take_notices()
        self._history_unsaved = (
            False  # a failed history write was told; the next one is told again only after a success
        )
        self.conversation: LiveConversation | SimulatedConversation | None = None
        self.capabilities: Capabilities | None = None
        self._engine: Engine | None = None
        self._engine_key: tuple[object, ...] | None = None
        self._vad = vad
        self._load_engine: Callable[[Settings], Engine] = load_engine or self._load_named_engine
        self._history_lock = threading.Lock()
        self._typed = False  # the next transcript is a typed question's, already recorded
        self._conversation_open = threading.Event()  # set while a conversation exists
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._ptt_lock = threading.Lock()
        self._ptt_down = False
        self._control = threading.Thread(target=self._work, name="runtime-control", daemon=True)
        self._control.start()

    # ---- what the GUI calls (all return at once) --------------------------------------------

    def start(self, greet: bool = False) -> None:
        for message in self._startup_notices + take_notices():
            self.on_event(Notice("warning", message))
        self._startup_notices = []
        self._jobs.put(lambda: self._reconfigure(None, self.settings))
        if greet:
            self.announce(GREETING)

    def apply(self, settings: Settings) -> None:
        """Save new settings and apply them from the next reply on (devices and models reload).
        When they cannot be saved (a read-only or full disk) they still apply, with a notice; the
        file on disk stays as it was."""
        check_settings(settings)
        old, self.settings = self.settings, settings
        if settings.mode != old.mode:
            with self._ptt_lock:
                self._ptt_down = False  # the session forgets a held key when the mode changes
        if settings.start_at_login != old.start_at_login:
            try:
                set_autostart(settings.start_at_login)
            except OSError as exc:
                log.warning("could not change the autostart entry", exc_info=True)
                self.on_event(Notice("warning", f"could not change starting at login ({exc.strerror or exc})"))
        try:
            self.files.save_settings(settings)
        except OSError as exc:
            log.warning("could not save the settings", exc_info=True)
            self.on_event(
                Notice(
                    "warning", f"could not save the settings ({exc.strerror or exc}); they apply until the app closes"
                )
            )
        self._jobs.put(lambda: self._reconfigure(old, settings))

    def update(self, **changes: Any) -> Settings:
        settings = replace(self.settings, **changes)
        self.apply(settings)
        return settings

    # The conversation is made, replaced and closed on the control thread; whatever the window
    # asks of it goes there too, in order, so it always reaches the conversation that is current.

    # Push-to-talk comes from the window's key and button and from the global key's thread; a
    # press seen by two of them (the window has the focus) is one press.

    def press(self) -> None:
        with self._ptt_lock:
            if self._ptt_down:
                return
            self._ptt_down = True
        self._jobs.put(lambda: self._session_call("press"))

    def release(self) -> None:
        with self._ptt_lock:
            if not self._ptt_down:
                return
            self._ptt_down = False
        self._jobs.put(lambda: self._session_call("release"))

    def stop_reply(self) -> None:
        self._jobs.put(lambda: self._session_call("stop"))

    def set_muted(self, muted: bool) -> None:
        """Mute or unmute the microphone: while muted, silence replaces what it hears before echo
        cancellation, voice activity and recognition."""
        self._jobs.put(lambda: self._set_muted(muted))

    def _set_muted(self, muted: bool) -> None:
        self.muted = muted
        if self.conversation is not None:
            self.conversation.set_muted(muted)
            self._audio_status()

    def say(self, text: str) -> bool:
        """A typed question, answered aloud; False (with a notice) while the models still load."""
        text = text.strip()
        if not text:
            return False
        if not self._conversation_open.is_set():
            self.on_event(Notice("info", "still loading the models; one moment"))
            return False
        self._jobs.put(lambda: self._say(text))
        return True

    def announce(self, text: str) -> None:
        """Say `text` as it is, with the settings applied so far (a greeting, a style preview)."""
        self._jobs.put(lambda: self._session_call("announce", text))

    def _say(self, text: str) -> None:
        if self._ready():
            self._record(HistoryEntry("user", text))
            self._typed = True
            self._current.session.say(text)

    def speak(self, audio: np.ndarray) -> float:
        """Simulated room only: the user says `audio` (16 kHz) into the microphone now."""
        if not isinstance(self.conversation, SimulatedConversation):
            raise RuntimeError("speak() needs the simulated room")
        return self.conversation.speak(audio)

    def wait_ready(self, timeout: float) -> bool:
        """Block until the jobs queued so far are done (tests, the screenshot renderer)."""
        done = threading.Event()
        self._jobs.put(done.set)
        return done.wait(timeout)

    def shutdown(self) -> None:
        """End the conversation: the reply stops at once, the jobs queued so far run, the control
        thread ends, the devices are closed and every conversation thread has ended. The settings
        and history are on disk already (each change is written when it happens)."""
        if self.conversation is not None:
            self.conversation.session.stop()  # silent now, not after the queued jobs
        self._jobs.put(None)
        self._control.join(timeout=30)
        self._conversation_open.clear()
        if self.conversation is not None:
            self.conversation.stop()
            self.conversation = None

    @property
    def can_match_voice(self) -> bool:
        """Voice matching maps from the engine's own voice, which only an engine with a separate
        voice model (the cascade's Piper) lets the core measure."""
        return self._engine is None or hasattr(self._engine, "tts")

    # ---- erasing the user's data (core/erase.py says what each removes) ------------------------

    def clear_history(self) -> list[str]:
        """Erase the conversation history: the file, this runtime's copy and what the engine reads
        next (the window empties its view on HistoryCleared). OSError when the file stays."""
        with self._history_lock:
            removed = erase.clear_history(self.files)
            self.history.clear()
        self._jobs.put(self._forget_conversation)
        self.on_event(HistoryCleared())
        return removed

    def delete_clip(self, name: str) -> list[str]:
        """Delete a voice clip and its profile (KeyError: no such clip); settings and presets that
        named it no longer do."""
        removed = erase.delete_clip(self.files, name)
        if self.settings.voice_reference == name:
            self.update(voice_reference=None)
        return removed

    def forget_everything(self) -> list[str]:
        """Erase all the user's data but the models, and go on with the default settings."""
        with self._history_lock:
            removed = erase.forget_everything(self.files)
            self.history.clear()
        self._jobs.put(self._forget_conversation)
        self.on_event(HistoryCleared())
        old, self.settings = self.settings, Settings()  # the defaults, not written: nothing is left on disk
        self._jobs.put(lambda: self._reconfigure(old, self.settings))
        return removed

    def _forget_conversation(self) -> None:
        if self.conversation is not None:
            self.conversation.session.history = []

    # ---- style ------------------------------------------------------------------------------

    def style_for(self, settings: Settings) -> tuple[Style, VoiceProfile | None]:
        """The Style the engine gets, and the target voice profile when a clip is to be matched."""
        try:
            preset = self.presets.get(settings.preset)
        except (KeyError, PresetError):
            log.warning("preset %r is gone; using Neutral", settings.preset, exc_info=True)
            if not self._presets_kept_aside:
                self.on_event(Notice("warning", f"preset {settings.preset!r} is gone; using Neutral"))
            preset = self.presets.get("Neutral")
        overrides = {k: getattr(settings, k) for k in ("emotion", "speed", "pitch") if getattr(settings, k) is not None}
        if settings.persona.strip():
            overrides["persona"] = settings.persona.strip()
        if overrides:
            preset = parse_preset({**preset.to_json(), **overrides}, "settings")
        clip = settings.voice_reference or (preset.voice_reference.clip if preset.voice_reference else None)
        if clip is None:
            return style_from_preset(preset), None
        path = self.files.voices / clip
        if not path.exists():
            self.on_event(Notice("warning", f"voice clip {clip} is missing; using the packaged voice"))
            return style_from_preset(preset), None
        return style_from_preset(preset, str(path)), clip_profile(self.files.voices, clip)

    # ---- the control thread ---------------------------------------------------------------

    def _work(self) -> None:
        while True:
            polling = self.conversation is not None and bool(self.conversation.missing)
            try:
                job = self._jobs.get(timeout=self.device_poll_s if polling else None)
            except queue.Empty:
                job = self._poll_devices
            if job is None:
                return
            try:
                job()
            except Exception as exc:  # shown to the user; the app keeps running
                log.exception("a control job failed")
                self.on_event(Notice("error", f"{type(exc).__name__}: {exc}"))

    @property
    def _current(self) -> LiveConversation | SimulatedConversation:
        """The open conversation, where one is known to be open (after `_ready`, on the control thread)."""
        assert self.conversation is not None
        return self.conversation

    def _ready(self) -> bool:
        if self.conversation is None:
            self.on_event(Notice("info", "still loading the models; one moment"))
            return False
        return True

    def _session_call(self, name: str, *args: object) -> None:
        if self._ready():
            getattr(self._current.session, name)(*args)

    def _reconfigure(self, old: Settings | None, new: Settings) -> None:
        engine_key = tuple(getattr(new, k) for k in _ENGINE_KEYS)
        reload_engine = engine_key != self._engine_key
        reopen_audio = (
            old is None
            or reload_engine
            or self.conversation is None
            or any(getattr(old, k) != getattr(new, k) for k in _AUDIO_KEYS)
        )
        style, target = self.style_for(new)
        for message in take_notices():  # a damaged voice profile met while the style was made
            self.on_event(Notice("warning", message))
        if self.conversation is None:  # first start: the conversation goes on from the saved history
            history = [Message(e.role, e.text, e.interrupted) for e in self.history]
        elif reopen_audio:
            history = self.conversation.session.history
            self._conversation_open.clear()
            self.conversation.stop()
            self.conversation = None
            if not self.simulated:  # no stream of ours is open: PortAudio may list devices anew
                self.devices.rescan()
        if reload_engine:
            self.on_event(StateChanged(State.IDLE))
            self.on_event(Notice("info", "loading the models"))
            self._engine = None
            self._engine = self._load_engine(new)
            for message in getattr(self._engine, "notices", ()):  # a model that fell back to the CPU
                self.on_event(Notice("warning", message))
            self._engine_key = engine_key
            self.capabilities = self._engine.capabilities
            self.on_event(EngineReady(new.engine, self.capabilities))
        if self._vad is None:
            self._vad = load_vad(self.store)
        profiles = None
        if target is not None and self.can_match_voice:
            profiles = (engine_voice_profile(self._engine, self.store), target)  # type: ignore[arg-type]  # it has .tts
        if reopen_audio:
            self.conversation = self._open(new, style, history)
            self._conversation_open.set()
            self._tell_missing_devices()
            self._audio_status()
        session = self._current.session
        session.set_turn_config(new.turn_config())
        session.set_mode(Mode(new.mode))
        session.set_style(style)
        session.voice_profiles = profiles

    def _load_named_engine(self, settings: Settings) -> Engine:
        return load_named_engine(
            settings.engine, llm=settings.chat_model, asr=settings.asr_model, compute=settings.compute, store=self.store
        )

    def _judge(self) -> TurnJudge | None:
        """The end-of-turn model, or None (turns then end on silence alone) with a notice."""
        try:
            return load_turn_judge(self.store)
        except RegistryError as exc:
            log.warning("no end-of-turn model", exc_info=True)
            self.on_event(Notice("warning", f"turns end on silence alone: {exc}"))
            return None

    def _open(
        self, settings: Settings, style: Style, history: list[Message]
    ) -> LiveConversation | SimulatedConversation:
        switches = dict(
            echo_cancellation=settings.echo_cancellation,
            noise_suppression=settings.noise_suppression,
            gain_control=settings.gain_control,
        )
        judge = self._judge()
        assert self._engine is not None and self._vad is not None  # loaded before any conversation opens
        conversation: LiveConversation | SimulatedConversation
        if self.simulated:
            conversation = SimulatedConversation(
                self._engine,
                self._vad,
                self._on_conversation_event,
                settings.turn_config(),
                style,
                Mode(settings.mode),
                room=self.room,
                judge=judge,
                **switches,
            )
        else:
            self._device_signature = self.devices.signature()
            conversation = LiveConversation(
                self._engine,
                self._vad,
                self._on_conversation_event,
                settings.input_device,
                settings.output_device,
                settings.turn_config(),
                style,
                Mode(settings.mode),
                devices=self.devices,
                judge=judge,
                **switches,
            )
        conversation.session.history = list(history)
        conversation.set_muted(self.muted)
        return conversation.start()

    # ---- devices --------------------------------------------------------------------------------

    def _tell_missing_devices(self) -> None:
        missing = self._current.missing
        if "microphone" in missing:
            how = "in text" if "speaker" in missing else "aloud and in text"
            self.on_event(Notice("warning", NO_MICROPHONE.format(reason=missing["microphone"], how=how)))
        if "speaker" in missing:
            self.on_event(Notice("warning", NO_SPEAKER.format(reason=missing["speaker"])))

    def _audio_status(self) -> None:
        c = self._current
        self.on_event(
            AudioStatus(
                None if "microphone" in c.missing else c.microphone_name,
                None if "speaker" in c.missing else c.speaker_name,
                self.muted,
            )
        )

    def _poll_devices(self) -> None:
        """Control thread, while the conversation lacks a device: when the machine's devices look
        different, reopen the audio (between replies, so nothing is cut off) to pick them up."""
        conversation = self.conversation
        if conversation is None or not conversation.missing:
            return
        signature = self.devices.signature()
        if signature == self._device_signature:
            return
        if conversation.session.state != State.LISTENING:
            return  # a turn or a reply is under way: look again at the next poll
        log.info("the audio devices changed; reopening the audio")
        before = dict(conversation.missing)
        self._reconfigure(None, self.settings)
        for label in before.keys() - self._current.missing.keys():
            name = self._current.microphone_name if label == "microphone" else self._current.speaker_name
            self.on_event(Notice("info", f"{label} found: {name}"))

    # ---- history ------------------------------------------------------------------------------

    def _on_conversation_event(self, event: CoreEvent) -> None:
        if isinstance(event, UserTranscript):
            if self._typed:  # a typed question: already recorded and shown as typed
                self._typed = False
                return
            self._record(HistoryEntry("user", event.text))
        elif isinstance(event, ReplyFinished) and event.reason == ReplyEnd.DISCARDED:
            with self._history_lock:  # the turn went on: its transcript comes again, whole
                last = self.history[-1] if self.history else None
                if event.transcript and last is not None and last.role == "user" and last.text == event.transcript:
                    self.history.pop()
                    self._save_history()
        elif (
            isinstance(event, ReplyFinished)
            and event.text
            and event.reason in (ReplyEnd.COMPLETE, ReplyEnd.INTERRUPTED)
        ):
            self._record(HistoryEntry("assistant", event.text, interrupted=event.reason == ReplyEnd.INTERRUPTED))
        elif isinstance(event, TurnLatency):
            with self._history_lock:
                if self.history and self.history[-1].role == "assistant":
                    self.history[-1] = replace(self.history[-1], latency_ms=round(event.response, 1))
                    self._save_history()
        self.on_event(event)

    def _record(self, entry: HistoryEntry) -> None:
        with self._history_lock:
            self.history.append(entry)
            del self.history[:-HISTORY_KEPT]
            self._save_history()

    def _save_history(self) -> None:
        """Called under the history lock. A failed write leaves the previous file as it was and is
        told once; the conversation goes on, and the next write that works saves it all."""
        try:
            self.files.save_history(self.history)
        except OSError as exc:
            log.warning("could not save the conversation history", exc_info=True)
            if not self._history_unsaved:
                self._history_unsaved = True
                self.on_event(
                    Notice(
                        "warning",
                        f"could not save the conversation history ({exc.strerror or exc}); it goes on unsaved",
                    )
                )
            return
        self._history_unsaved = False
