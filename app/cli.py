"""`voice-companion`: the one entry point. No arguments opens the desktop app (or, with no display
to show it on, speaks the bundled sample question); subcommands reach the same core."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Literal

from core.engines import DEFAULT_ENGINE, ENGINES
from models.devices import COMPUTE

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SAMPLE_QUESTION = ASSETS / "questions" / "sample.flac"


def _fail(message: str, code: int = 2) -> int:
    """Refuse with one line on stderr. The log gets the line too, and when this is called while an
    exception is being handled (every `except ...: return _fail(...)`), that exception's traceback."""
    log.warning("exit %d: %s", code, message, exc_info=sys.exc_info()[0] is not None)
    print(f"voice-companion: {message}", file=sys.stderr)
    return code


def _talk(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="voice-companion talk",
        description="Answer a spoken conversation (a WAV/FLAC/OGG file, up to 10 minutes) out loud, turn by turn.",
    )
    p.add_argument("input", type=Path, help="your side of the conversation: WAV, FLAC or OGG, any rate or channels")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("reply.wav"),
        help="where to write the conversation as heard (NAME.replies.wav beside it: the replies alone)",
    )
    p.add_argument(
        "--engine",
        default=DEFAULT_ENGINE,
        choices=list(ENGINES),
        help="which engine answers: " + "; ".join(f"{e.name}: {e.help}" for e in ENGINES.values()),
    )
    p.add_argument("--llm", default=None, help="chat model asset id (see `models list`)")
    p.add_argument(
        "--asr",
        default=None,
        help="speech recognition model asset id: whisper-base (default) or whisper-tiny-en (faster, English only)",
    )
    p.add_argument(
        "--quant",
        default="q4_k_m",
        choices=["f32", "f16", "q8_0", "q4_k_m", "q4_0"],
        help="with --engine omni: the llama.cpp file (converted on first use); q4_0 is the fast one on a CPU",
    )
    p.add_argument("--end-of-turn-ms", type=int, default=None, help="silence that ends your turn")
    p.add_argument(
        "--compute",
        default="auto",
        choices=list(COMPUTE),
        help="where the models run (see `devices`): auto, cuda, metal or cpu",
    )
    p.add_argument("--preset", default=None, help="voice style preset (built-in or your own)")
    p.add_argument("--emotion", default=None, help="neutral, cheerful, calm, sad, excited or serious")
    p.add_argument("--speed", type=float, default=None, help="speaking speed, 0.5 to 2.0")
    p.add_argument("--pitch", type=float, default=None, help="pitch in semitones, -12 to +12")
    p.add_argument(
        "--voice-reference",
        type=Path,
        default=None,
        help="a 5-30 s clip of a speaker: the reply's pitch, vocal-tract length and tilt "
        "move toward it (not a neural voice clone)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    try:
        style = _style(args)
    except (KeyError, ValueError) as exc:
        return _fail(str(exc).strip("'\""))
    if args.out.parent and not args.out.parent.exists():
        return _fail(f"--out {args.out}: folder {args.out.parent} does not exist")

    from core.audio.io import AudioInputError, load_voice, save_wav
    from core.style.voice_clips import engine_voice_profile
    from core.turns import has_speech
    from core.audio.vad import load_vad
    from core.engines import load_engine
    import numpy as np

    from core.events import ReplyEnd
    from core.file_conversation import talk
    from core.turns import TurnConfig

    try:
        voice = load_voice(args.input)
    except AudioInputError as exc:
        return _fail(str(exc))
    config = TurnConfig() if args.end_of_turn_ms is None else TurnConfig(end_of_turn_ms=args.end_of_turn_ms)
    vad = load_vad()
    if not has_speech(vad, voice, config):
        return _fail(f"{args.input}: no speech found in it (only silence or noise)")
    target = None
    if args.voice_reference is not None:
        from core.style.voice_match import ReferenceError, analyze_reference

        try:
            target = analyze_reference(load_voice(args.voice_reference, max_seconds=60), 16000)
        except (AudioInputError, ReferenceError) as exc:
            return _fail(f"--voice-reference: {exc}")
    if target is not None and args.engine != "cascade":
        return _fail("--voice-reference works with the cascade engine only")
    engine = load_engine(args.engine, args.llm, args.quant, compute=args.compute, asr=args.asr)
    for message in getattr(engine, "notices", ()):  # a model that fell back to the CPU
        print(f"voice-companion: {message}", file=sys.stderr)
    profiles = None
    if target is not None:
        from models.cascade.engine import CascadeEngine

        assert isinstance(engine, CascadeEngine)  # --voice-reference with another engine was refused above
        profiles = (engine_voice_profile(engine), target)
    conversation = talk(engine, vad, voice, config, style, voice_profiles=profiles)
    turns = [_turn_report(t) for t in conversation.turns]
    answered = [t for t in conversation.turns if t.reason == ReplyEnd.COMPLETE]
    if not answered:
        reason = conversation.turns[0].reason if conversation.turns else "no turn was heard"
        return _fail(f"no reply completed: {reason}", 1)
    save_wav(args.out, conversation.timeline, conversation.rate, private=False)
    replies_wav = args.out.with_name(args.out.stem + ".replies.wav")
    save_wav(replies_wav, conversation.replies, conversation.rate, private=False)
    responses = [t.latency.response for t in conversation.turns if t.latency is not None]
    first = turns[0]
    report = {
        # The first turn's fields, as a one-question file had them; every turn is in `turns`.
        "transcript": first["transcript"],
        "reply_text": first["reply_text"],
        "reply_audio_seconds": first["reply_audio_seconds"],
        "latency_ms": first["latency_ms"],
        "turns": turns,
        "summary": {
            "turns": len(turns),
            "answered": len(answered),
            "end_reasons": {
                r: sum(t["end_reason"] == r for t in turns) for r in sorted({t["end_reason"] for t in turns})
            },
            "response_ms_median": round(float(np.median(responses)), 1) if responses else None,
            "underruns": conversation.underruns,
            "seconds": round(len(conversation.timeline) / conversation.rate, 2),
        },
        "conversation_wav": str(args.out),
        "replies_wav": str(replies_wav),
    }
    if args.json:
        print(json.dumps(report))
    else:
        for n, turn in enumerate(turns, 1):
            prefix = f"[{n}] " if len(turns) > 1 else ""
            print(f"{prefix}you said:  {turn['transcript']}")
            print(
                f"{prefix}reply:     {turn['reply_text']}"
                + ("" if turn["end_reason"] == "complete" else f"  ({turn['end_reason']})")
            )
            lat = turn["latency_ms"]
            if lat:
                stages = ", ".join(f"{k} {v:.0f} ms" for k, v in lat.items() if k != "response")
                response = f"{lat['response']:.0f} ms from the end of your speech to the first reply sound"
                print(f"{prefix}latency:   {response} ({stages})")
        print(
            f"wrote {args.out} (the conversation, {report['summary']['seconds']:.1f} s) and {replies_wav} (the replies)"
        )
    return 0


def _turn_report(turn) -> dict:
    lat = turn.latency
    return {
        "transcript": turn.transcript,
        "reply_text": turn.reply_text,
        "end_reason": str(turn.reason),
        "at_seconds": round(turn.user_at, 2),
        "reply_audio_seconds": round(len(turn.reply_audio) / turn.rate, 3),
        "latency_ms": {
            "end_of_turn": round(lat.end_of_turn, 1),
            **{k: round(lat.stages.get(k, float("nan")), 1) for k in TALK_STAGES},
            "response": round(lat.response, 1),
        }
        if lat
        else None,
        # Every stage the engine timed, the wait for the previous reply to let go ("handover") too.
        "stages_ms": {k: round(v, 1) for k, v in lat.stages.items()} if lat else None,
        # The chat model's prompt: tokens found in its cache, tokens it had to read this turn.
        "prompt_tokens": lat.prompt_tokens if lat else None,
    }


TALK_STAGES = ("asr", "llm_first_token", "tts_first_audio")


def _style(args: argparse.Namespace):
    """The Style for a command: a preset (default: Neutral) with the flags laid over it."""

    from core.style.presets import PresetStore, parse_preset
    from core.style.resolve import style_from_preset
    from models.registry.datadir import default_data_dir

    preset = PresetStore(default_data_dir() / "presets").get(args.preset or "Neutral")
    changes = {
        k: v for k, v in (("emotion", args.emotion), ("speed", args.speed), ("pitch", args.pitch)) if v is not None
    }
    data = {**preset.to_json(), **changes}
    return style_from_preset(parse_preset(data, "--" + next(iter(changes), "preset")) if changes else preset)


def _presets(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="voice-companion presets", description="Voice style presets.")
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="built-in and your own presets")
    sub.add_parser("show", help="one preset as JSON").add_argument("name")
    imp = sub.add_parser("import", help="add a preset file (checked field by field)")
    imp.add_argument("file", type=Path)
    imp.add_argument("--overwrite", action="store_true", help="replace your preset of the same name")
    exp = sub.add_parser("export", help="write a preset to a file")
    exp.add_argument("name")
    exp.add_argument("file", type=Path)
    sub.add_parser("delete", help="delete one of your presets").add_argument("name")
    args = p.parse_args(argv)

    from core.settings import UserFiles
    from core.style.presets import PresetError, PresetStore

    store = PresetStore(UserFiles().presets)
    try:
        if args.action == "list":
            for name in store.names():
                print(name + ("  (built in)" if store.is_built_in(name) else ""))
        elif args.action == "show":
            print(json.dumps(store.get(args.name).to_json(), indent=2))
        elif args.action == "import":
            print(f"imported {store.import_file(args.file, overwrite=args.overwrite).name!r}")
        elif args.action == "export":
            store.export(args.name, args.file)
            print(f"wrote {args.file}")
        else:
            store.delete(args.name)
            print(f"deleted {args.name!r}")
    except (PresetError, KeyError, OSError) as exc:
        return _fail(str(exc).strip("'\""))
    return 0


def _data(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="voice-companion data", description="Erase what the app keeps of yours (the models stay)."
    )
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser("clear-history", help="erase the conversation history")
    sub.add_parser("delete-clip", help="delete a voice clip and its profile").add_argument("name")
    sub.add_parser("list-clips", help="the voice clips kept for voice matching")
    sub.add_parser("where", help="print the data folder")
    forget = sub.add_parser("forget", help="erase settings, history, presets, voice clips and logs")
    forget.add_argument("--yes", action="store_true", help="do not ask (needed when not on a terminal)")
    args = p.parse_args(argv)

    from core import erase
    from core.settings import UserFiles
    from core.style.voice_clips import clip_names

    files = UserFiles()
    if args.action == "forget" and not args.yes:
        if not sys.stdin.isatty():
            return _fail("forget erases everything of yours: add --yes to confirm")
        answer = input(
            f"Erase your settings, history, presets, voice clips and logs in {files.root}? The models stay. [y/N] "
        )
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing erased")
            return 1
    if args.action == "where":
        print(files.root)
        return 0
    try:
        if args.action == "list-clips":
            for name in clip_names(files.voices):
                print(name)
            return 0
        if args.action == "clear-history":
            removed = erase.clear_history(files)
        elif args.action == "delete-clip":
            removed = erase.delete_clip(files, args.name)
        else:
            removed = erase.forget_everything(files)
    except KeyError as exc:
        return _fail(exc.args[0])
    except OSError as exc:
        return _fail(f"could not erase: {exc.strerror or exc} ({exc.filename or files.root})")
    print(f"erased {len(removed)} file{'s' * (len(removed) != 1)}" + (f": {', '.join(removed)}" if removed else ""))
    return 0


def _avx2_llama_site() -> Path | None:
    """The portable llama.cpp (AVX2, no AVX-512) that scripts/package.sh keeps in its build cache
    for this llama-cpp-python version, if it was built."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        llama_version = version("llama_cpp_python")
    except PackageNotFoundError:
        return None
    cache = Path(os.environ.get("VC_BUILD_CACHE") or Path.home() / ".cache" / "voice-companion-build")
    built = sorted(cache.glob(f"llama-{llama_version}-avx2-*/.complete"))
    return built[-1].parent / "site" if built else None


# The benches each option applies to.
BENCH_OPTIONS = {"device": ("omni",), "quants": ("omni",), "asr": ("natural", "latency")}


def _bench(argv: list[str]) -> int:
    try:  # the benchmarks are a separate package with their own dependencies (jiwer)
        from bench import BENCHES
        from bench.stats import cpu_features
    except ImportError as exc:
        return _fail(f"the benchmarks are not installed ({exc.name}): pip install -e '.[bench]' from the source tree")

    p = argparse.ArgumentParser(prog="voice-companion bench", description="Measure; prints one JSON object.")
    p.add_argument("name", choices=sorted(BENCHES))
    p.add_argument("--json", action="store_true", help="JSON only (the default prints JSON too)")
    p.add_argument("--turns", type=int, default=None, help="how many turns or repeats (soak: minutes)")
    p.add_argument(
        "--avx2-only",
        action="store_true",
        help="keep AVX-512 out, as on most laptops: CTranslate2 and torch told so, llama.cpp the AVX2 build "
        "scripts/package.sh keeps in its cache",
    )
    p.add_argument(
        "--device",
        choices=["cpu", "cuda", "mps"],
        default=None,
        help="bench omni: where every part runs (the language model, encoder, adapter and codec)",
    )
    p.add_argument("--quants", default=None, help="bench omni: the files to measure, e.g. f16,q4_k_m (default all)")
    p.add_argument(
        "--asr", default=None, help="bench natural, latency: the speech recognition model (default whisper-base)"
    )
    args = p.parse_args(argv)
    extra = {k: v for k, v in (("device", args.device), ("quants", args.quants), ("asr", args.asr)) if v is not None}
    for option in extra:
        takes = BENCH_OPTIONS[option]
        if args.name not in takes:
            return _fail(f"--{option} applies to bench {' and '.join(takes)} only")
    if args.avx2_only:  # read when the libraries load, which is after this
        site = _avx2_llama_site()
        if site is None:
            return _fail(
                "--avx2-only needs llama.cpp built without AVX-512: run 'bash scripts/package.sh' once "
                "(it keeps one in ~/.cache/voice-companion-build), or set VC_BUILD_CACHE to where it is"
            )
        sys.path.insert(0, str(site))
        os.environ["CT2_FORCE_CPU_ISA"] = "AVX2"
        os.environ["ATEN_CPU_CAPABILITY"] = "avx2"
    try:
        result = BENCHES[args.name](turns=args.turns, **extra)
    except ValueError as exc:  # a device or file the bench cannot use here: one line
        return _fail(str(exc))
    result.setdefault("cpu", cpu_features())
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


def _devices(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="voice-companion devices", description="List the microphones and speakers, and where each model runs."
    )
    p.add_argument(
        "--json", action="store_true", help='print one JSON object: {"audio": [devices], "compute": the device plan}'
    )
    p.add_argument(
        "--compute",
        default=None,
        choices=list(COMPUTE),
        help="the plan for this compute setting (default: the one in your settings)",
    )
    args = p.parse_args(argv)

    from dataclasses import asdict

    from core.audio.devices import DeviceError, list_devices
    from models.devices import plan_devices

    try:
        devices = list_devices()
    except DeviceError as exc:
        return _fail(str(exc))
    plan = plan_devices(args.compute or _saved_compute())
    if args.json:
        print(json.dumps({"audio": [asdict(d) for d in devices], "compute": plan.to_json()}))
        return 0
    width = max((len(d.name) for d in devices), default=0)
    kinds: tuple[tuple[Literal["input", "output"], str], ...] = (("input", "Microphones"), ("output", "Speakers"))
    for kind, title in kinds:
        found = [d for d in devices if d.channels(kind) > 0]
        print(f"{title}:" if found else f"{title}: none found")
        for d in found:
            mark = "*" if d.is_default(kind) else " "
            print(
                f" {mark} {d.index:>3}  {d.name:<{width}}  {d.channels(kind):>3} ch  "
                f"{d.default_rate:>6.0f} Hz  {d.host_api}"
            )
    if devices:
        print("* = the system default")
    print(f"Models (compute setting: {plan.compute}):")
    for line in plan.lines():
        print(f"  {line}")
    return 0


def _saved_compute() -> str:
    from core.settings import UserFiles

    settings, _ = UserFiles().load_settings()
    return settings.compute


def _listen(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="voice-companion listen", description="Talk with the companion through your microphone and speakers."
    )
    p.add_argument("--input", default=None, help="microphone name or index (see `devices`)")
    p.add_argument("--output", default=None, help="speaker name or index (see `devices`)")
    p.add_argument("--push-to-talk", action="store_true", help="Enter starts your turn, Enter again ends it")
    p.add_argument(
        "--no-echo-cancellation",
        action="store_true",
        help="with headphones; without cancellation it will not listen while it speaks",
    )
    p.add_argument("--llm", default=None, help="chat model asset id (see `models list`)")
    p.add_argument(
        "--asr",
        default=None,
        help="speech recognition model asset id: whisper-base (default) or whisper-tiny-en (faster, English only)",
    )
    p.add_argument("--end-of-turn-ms", type=int, default=None, help="silence that ends your turn")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long (default: Ctrl-C)")
    args = p.parse_args(argv)

    import threading

    from core.audio.devices import DeviceError
    from core.engines import load_cascade
    from core.audio.turn_end import load_turn_judge
    from core.audio.vad import load_vad
    from core.wiring import LiveConversation
    from core.events import (
        AssistantText,
        Mode,
        Notice,
        ReplyEnd,
        ReplyFinished,
        State,
        StateChanged,
        TurnLatency,
        UserTranscript,
    )
    from core.turns import TurnConfig

    fresh = True  # the next reply text starts a "reply:" line

    def show(event) -> None:
        nonlocal fresh
        if isinstance(event, UserTranscript):
            print(f"\nyou:  {event.text}", flush=True)
        elif isinstance(event, AssistantText):
            print(("reply: " if fresh else "") + event.delta, end="", flush=True)
            fresh = False
        elif isinstance(event, ReplyFinished):
            print(" [interrupted]" if event.reason == ReplyEnd.INTERRUPTED else "", flush=True)
            fresh = True
        elif isinstance(event, TurnLatency):
            print(f"       ({event.response:.0f} ms to the first sound)", flush=True)
        elif isinstance(event, Notice):
            print(f"\n[{event.level}] {event.message}", flush=True)
        elif isinstance(event, StateChanged) and event.state == State.LISTENING:
            fresh = True

    config = TurnConfig() if args.end_of_turn_ms is None else TurnConfig(end_of_turn_ms=args.end_of_turn_ms)
    try:
        conversation = LiveConversation(
            load_cascade(llm=args.llm, asr=args.asr),
            load_vad(),
            show,
            args.input,
            args.output,
            config,
            mode=Mode.PUSH_TO_TALK if args.push_to_talk else Mode.ALWAYS_LISTENING,
            echo_cancellation=not args.no_echo_cancellation,
            judge=load_turn_judge(),
        )
    except DeviceError as exc:
        return _fail(str(exc))
    conversation.start()
    print(
        "Listening"
        + (
            ": press Enter to talk, Enter again when you are done."
            if args.push_to_talk
            else ": just speak. Ctrl-C to quit."
        ),
        flush=True,
    )
    stop = threading.Event()
    try:
        if args.push_to_talk and sys.stdin.isatty():
            while not stop.is_set():
                input()
                conversation.session.press()
                print("(talking... Enter to finish)", flush=True)
                input()
                conversation.session.release()
        else:
            stop.wait(args.seconds)
    except (KeyboardInterrupt, EOFError):
        pass
    finally:
        conversation.stop()
    print(f"\nunderruns {conversation.underruns}, overruns {conversation.overruns}")
    return 0


def _app(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="voice-companion", description="The desktop voice companion.")
    p.add_argument(
        "--screenshot",
        type=Path,
        metavar="DIR",
        help="render the window mid-conversation and the settings pane to PNG files, then exit",
    )
    p.add_argument("--scale", type=float, default=1.0, help="with --screenshot: UI scale (2 = 200%%)")
    p.add_argument("--dark", action="store_true", help="with --screenshot: the dark theme")
    args = p.parse_args(argv)
    if args.screenshot is not None:
        from app.main import screenshots

        for path in screenshots(args.screenshot, args.scale, True if args.dark else None):
            print(f"wrote {path}")
        return 0
    # QT_QPA_PLATFORM=offscreen is a display too: the window is made and painted, off screen.
    has_display = (
        bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        or sys.platform in ("darwin", "win32")
        or os.environ.get("QT_QPA_PLATFORM") == "offscreen"
    )
    if has_display:
        from app.qt_libs import xcb_problem

        problem = xcb_problem()
        if problem:
            return _fail(problem, 3)
        from app.main import run_app

        return run_app([sys.argv[0]])
    print(
        "No display here: speaking the bundled sample question through the whole pipeline instead. "
        "With a microphone: voice-companion listen"
    )
    return _talk([str(SAMPLE_QUESTION)])


def _convert(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="voice-companion models convert", description="Convert an installed model for llama.cpp (GGUF, quantized)."
    )
    p.add_argument("model", choices=["mini-omni"])
    p.add_argument("--quant", default="q4_k_m", choices=["f32", "f16", "q8_0", "q4_k_m", "q4_0"])
    p.add_argument("--force", action="store_true", help="convert again even if up to date")
    args = p.parse_args(argv)

    from models.omni.config import CheckpointError
    from models.omni.install import ensure_converted
    from models.registry import ModelStore

    try:
        folder = ensure_converted(ModelStore(), args.quant, force=args.force)
    except CheckpointError as exc:
        return _fail(str(exc))
    print(f"{args.model} ({args.quant}): ready in {folder}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one command; then one line on stderr for each notice a damaged file left (userfile.py)."""
    try:
        return _command(sys.argv[1:] if argv is None else argv)
    finally:
        from models.registry.userfile import take_notices

        for notice in take_notices():
            print(f"voice-companion: {notice}", file=sys.stderr)


def _command(argv: list[str]) -> int:
    commands = {
        "talk": _talk,
        "bench": _bench,
        "devices": _devices,
        "listen": _listen,
        "presets": _presets,
        "data": _data,
    }
    if argv[:1] == ["--version"]:
        from app.version import LICENCE, version

        print(f"voice-companion {version()} ({LICENCE})")
        return 0
    try:
        if argv[:2] == ["models", "convert"]:
            return _convert(argv[2:])
        if argv and argv[0] == "models":
            from models.registry.cli import models_command

            return models_command(argv[1:])
        if argv and argv[0] in commands:
            return commands[argv[0]](argv[1:])
        if argv and not argv[0].startswith("-"):
            return _fail(f"unknown command {argv[0]!r} (try: talk, listen, bench, models, presets, data, devices)")
        return _app(argv)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:  # the last line of defence: the traceback to the log, one readable line here
        from models.registry import RegistryError

        if isinstance(exc, RegistryError):  # a model that is missing or damaged: the line says what to do
            return _fail(str(exc))
        log.exception("failed: voice-companion %s", " ".join(argv))
        if os.environ.get("VOICE_COMPANION_DEBUG"):
            raise
        from core.logs import current_log_file

        print(f"voice-companion: {type(exc).__name__}: {exc}", file=sys.stderr)
        if current_log_file() is not None:
            print(f"see the log: {current_log_file()}", file=sys.stderr)
        return 1


def _start() -> None:
    """For every command: offline switches on (models/registry/offline.py), the data folder made
    private with temp files of killed writes removed, and the log there. A folder that cannot be
    written costs the log, not the command: one line says so and the command runs."""
    from core.memory import tune_allocator
    from models.registry.offline import stay_offline

    tune_allocator()  # before any model's threads start
    stay_offline()
    from core.logs import setup_logging
    from core.settings import UserFiles

    files = UserFiles()
    try:
        setup_logging(files.root)
    except OSError as exc:
        print(f"voice-companion: no log file ({exc})", file=sys.stderr)
        return
    log.info("started: voice-companion %s", " ".join(sys.argv[1:]))
    try:
        files.secure()
    except OSError as exc:
        log.warning("could not make the data folder private", exc_info=True)
        print(f"voice-companion: could not make {files.root} private ({exc.strerror or exc})", file=sys.stderr)


def run() -> None:
    """The console entry point. Exits without running native libraries' finalizers: with model
    threads still parked in llama.cpp or onnxruntime, those can crash a process that is done."""
    _start()
    code = main()
    log.info("exit code %d", code)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
