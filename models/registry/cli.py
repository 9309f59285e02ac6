"""`voice-companion models ...`: list, install, verify and add model assets from a terminal.

Failures print one line to stderr, never a traceback: exit code 2 for errors, 1 when a
verification finds a damaged or missing model.
"""

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from . import catalog
from .catalog import DEFAULT_ASSETS, add_user_file, pinnable
from .errors import HashMismatch, NotInstalled, RegistryError, UnknownAsset
from .pins import pin_from_hub, read_pins, save_pin
from .store import AssetStatus, ModelStore

log = logging.getLogger(__name__)

_GGUF_MAGIC = b"GGUF"


def models_command(args: list[str]) -> int:
    parser = _parser()
    try:
        options = parser.parse_args(args)
    except _UsageError as error:
        _say_error(f"{error} (see: voice-companion models --help)")
        return 2
    except SystemExit as done:  # --help printed its text
        return done.code if isinstance(done.code, int) else 0
    store = ModelStore()
    try:
        return options.run(store, options)
    except (RegistryError, OSError) as error:
        log.warning("models %s failed", " ".join(args), exc_info=True)
        _say_error(str(error))
        return 2
    except KeyboardInterrupt:
        _say_error("interrupted; nothing half-written was kept")
        return 130


def _list(store: ModelStore, options: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    for asset in store.assets():
        status = store.status(asset.id)
        rows.append(
            {
                "id": asset.id,
                "role": asset.role,
                "size": asset.size,
                "licence": asset.licence,
                "status": _label(status),
                "default": asset.id in DEFAULT_ASSETS,
                "bytes_on_disk": status.bytes_on_disk,
                "description": asset.description,
            }
        )
    for asset_id, (_, (role, licence, description)) in catalog.PINNABLE.items():
        if pinnable(asset_id):  # listed so it can be found; `models pin` makes it installable
            rows.append(
                {
                    "id": asset_id,
                    "role": role,
                    "size": None,
                    "licence": licence,
                    "status": f"not pinned: voice-companion models pin {asset_id}",
                    "default": False,
                    "bytes_on_disk": 0,
                    "description": description,
                }
            )
    if options.json:
        print(json.dumps({"models": rows}, indent=2))
        return 0
    table = [("ID", "ROLE", "SIZE", "LICENCE", "STATUS")] + [
        (
            r["id"] + (" *" if r["default"] else ""),
            r["role"],
            _human(r["size"]) if r["size"] is not None else "?",
            r["licence"],
            r["status"],
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print("* installed by `voice-companion models install` without ids")
    return 0


def _install(store: ModelStore, options: argparse.Namespace) -> int:
    ids = options.ids or list(DEFAULT_ASSETS)
    for asset_id in ids:  # an unknown id fails before anything is written
        store.asset(asset_id)
    installed = []
    for asset_id in ids:
        with _ProgressBars() as bars:
            folder = store.install(asset_id, progress=bars, force=options.force)
        installed.append({"id": asset_id, "path": str(folder)})
        if not options.json:
            print(f"{asset_id}: ready in {folder}")
    if options.json:
        print(json.dumps({"installed": installed}, indent=2))
    return 0


def _verify(store: ModelStore, options: argparse.Namespace) -> int:
    ids = options.ids or [a.id for a in store.assets() if store.status(a.id).bytes_on_disk]
    for asset_id in ids:
        store.asset(asset_id)
    results = []
    for asset_id in ids:
        try:
            with _ProgressBars() as bars:
                store.verify(asset_id, progress=bars)
        except (HashMismatch, NotInstalled) as error:
            log.warning("verifying %s failed", asset_id, exc_info=True)
            results.append({"id": asset_id, "ok": False, "error": str(error)})
            _say_error(str(error))
            continue
        results.append({"id": asset_id, "ok": True, "error": None})
        if not options.json:
            print(f"{asset_id}: ok")
    if options.json:
        print(json.dumps({"verified": results}, indent=2))
    elif not ids:
        print("no models installed; run: voice-companion models install")
    return 0 if all(r["ok"] for r in results) else 1


def _add_gguf(store: ModelStore, options: argparse.Namespace) -> int:
    path = Path(options.path).expanduser()
    with open(path, "rb") as f:
        if f.read(len(_GGUF_MAGIC)) != _GGUF_MAGIC:
            raise RegistryError(f"{path} is not a GGUF model file")
    asset = add_user_file(options.id, path, "llm", store.root)
    with _ProgressBars() as bars:
        folder = store.install(asset.id, progress=bars)
    if options.json:
        print(json.dumps({"installed": [{"id": asset.id, "path": str(folder)}]}, indent=2))
    else:
        print(f"{asset.id}: ready in {folder}")
    return 0


def _pin(store: ModelStore, options: argparse.Namespace) -> int:
    """Read the missing pins of hub assets from the hub (models/registry/pins.py)."""
    wanted = options.ids or [a for a in catalog.PINNABLE if pinnable(a)]
    for asset_id in wanted:
        if asset_id not in catalog.PINNABLE:
            raise UnknownAsset(asset_id, list(catalog.PINNABLE))
    done = []
    for asset_id in wanted:
        if not pinnable(asset_id):
            if not options.json:
                print(f"{asset_id}: pinned in this version already")
            continue
        known, _ = catalog.PINNABLE[asset_id]
        saved = read_pins(store.root).get(asset_id)
        pin = pin_from_hub(asset_id, saved or known, store.endpoint)
        path = save_pin(store.root, asset_id, pin)
        done.append({"id": asset_id, **pin.to_json()})
        if not options.json:
            print(f"{asset_id}: pinned {pin.repo_id} at commit {pin.revision} (saved in {path})")
            for f in pin.files:
                print(f"  {f.name}  {_human(f.size) if f.size is not None else '?'}  sha256 {f.sha256}")
    if options.json:
        print(json.dumps({"pinned": done}, indent=2))
    elif done:
        print(f"install with: voice-companion models install {' '.join(d['id'] for d in done)}")
    return 0


class _ProgressBars:
    """A store progress callback drawing one tqdm bar per file on stderr (none if not a tty)."""

    def __init__(self) -> None:
        self._file: tuple[str, str] | None = None
        self._bar: tqdm | None = None

    def __call__(self, asset_id: str, file_name: str, done: int, total: int) -> None:
        if self._bar is None or self._file != (asset_id, file_name):
            self._close()
            self._file = (asset_id, file_name)
            self._bar = tqdm(
                total=total,
                desc=f"{asset_id}/{file_name}",
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                leave=False,
                disable=None,
            )
        self._bar.update(done - self._bar.n)

    def __enter__(self) -> "_ProgressBars":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._close()

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _label(status: AssetStatus) -> str:
    if status.verified:
        return "ready"
    if status.bundled and status.installed:
        return "in the app, checked at first use"
    if status.installed:
        return "changed since last check"
    if status.bytes_on_disk:
        return "incomplete"
    return "not installed"


def _human(size: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _say_error(message: str) -> None:
    print(f"voice-companion models: error: {message}", file=sys.stderr)


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    # argparse would print the whole usage block and exit; we want one line and a return code.
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="voice-companion models", description="Manage the model assets.")
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", help="show every known model and whether it is ready")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=_list)

    install = commands.add_parser("install", help="install models (default: the standard set)")
    install.add_argument("ids", nargs="*", metavar="ID")
    install.add_argument("--force", action="store_true", help="rewrite files even if intact")
    install.add_argument("--json", action="store_true")
    install.set_defaults(run=_install)

    verify = commands.add_parser("verify", help="re-hash installed models (default: all)")
    verify.add_argument("ids", nargs="*", metavar="ID")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(run=_verify)

    pin = commands.add_parser(
        "pin", help="read the commit and hashes of a model this version could not pin (default: all)"
    )
    pin.add_argument("ids", nargs="*", metavar="ID")
    pin.add_argument("--json", action="store_true")
    pin.set_defaults(run=_pin)

    add = commands.add_parser("add-gguf", help="use your own GGUF chat model file")
    add.add_argument("id", metavar="ID")
    add.add_argument("path", metavar="PATH")
    add.add_argument("--json", action="store_true")
    add.set_defaults(run=_add_gguf)
    return parser
