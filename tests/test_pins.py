"""`voice-companion models pin`: reading a model's commit and hashes from the hub when this version
could not, then installing against them; on the local hub stand-in with a small random Mini-Omni."""

import json
from types import SimpleNamespace

import pytest

from test_registry import fake_hub, sha256_bytes  # noqa: F401  (a fixture)

COMMIT = "89abcdef" * 5


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """A tiny Mini-Omni checkpoint (its three folders), written once: the tests only read it."""
    from test_omni_support import write_tiny

    return write_tiny(tmp_path_factory.mktemp("upstream"), seed=7)


@pytest.fixture
def unpinned(tmp_path, upstream, fake_hub, monkeypatch):  # noqa: F811
    """Mini-Omni's three repos on the hub at COMMIT (their "main"); the app knows only the repos
    and file names, as this version does for two of them."""
    from models.omni.assets import CODEC, DESCRIPTIONS, ENCODER, LM
    from models.registry import catalog, cli
    from models.registry.pins import FilePin, RepoPin
    from models.registry.store import ModelStore

    repos = {
        LM: ("gpt-omni/mini-omni", upstream["lm"]),
        ENCODER: ("gpt-omni/mini-omni2", upstream["encoder"]),
        CODEC: ("hubertsiuzdak/snac_24khz", upstream["codec"]),
    }
    known, contents = {}, {}
    for asset_id, (repo, folder) in repos.items():
        names = []
        for path in sorted(folder.iterdir()):
            content = path.read_bytes()
            fake_hub.publish(repo, COMMIT, path.name, content, lfs=len(content) > 100_000)
            contents[(asset_id, path.name)] = content
            names.append(path.name)
        fake_hub.branches[(repo, "main")] = COMMIT
        known[asset_id] = RepoPin(repo, None, tuple(FilePin(n, None, None) for n in names))
    fake_hub.listing_lies.clear()
    fake_hub.log.clear()
    monkeypatch.setattr(catalog, "BUILT_IN", tuple(a for a in catalog.BUILT_IN if a.id not in known))
    monkeypatch.setattr(catalog, "PINNABLE", {k: (v, DESCRIPTIONS[k]) for k, v in known.items()})
    monkeypatch.setattr(cli, "ModelStore", lambda: ModelStore(endpoint=fake_hub.endpoint))
    monkeypatch.setenv("VOICE_COMPANION_DATA", str(tmp_path / "data"))
    yield SimpleNamespace(
        data=tmp_path / "data",
        known=known,
        contents=contents,
        hub=fake_hub,
        store=ModelStore(endpoint=fake_hub.endpoint),
    )
    fake_hub.listing_lies.clear()


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_pin_then_install_then_the_engine_can_run(unpinned, capsys):
    from app.cli import main
    from core.engines import engine_options

    assert main(["models", "install", "mini-omni"]) == 2
    assert "voice-companion models pin mini-omni" in one_error_line(capsys)
    assert "models pin" in engine_options(unpinned.store)["omni"]

    assert main(["models", "pin"]) == 0
    out = capsys.readouterr().out
    assert out.count(f"at commit {COMMIT}") == 3 and "install with: voice-companion models install" in out
    saved = json.loads((unpinned.data / "models" / "hub_pins.json").read_text())["assets"]
    for (asset_id, name), content in unpinned.contents.items():
        pin = next(f for f in saved[asset_id]["files"] if f["name"] == name)
        assert (pin["size"], pin["sha256"]) == (len(content), sha256_bytes(content))
        assert saved[asset_id]["revision"] == COMMIT

    assert main(["models", "pin", "mini-omni", "--json"]) == 0  # again: the saved pin must agree
    assert json.loads(capsys.readouterr().out)["pinned"][0]["revision"] == COMMIT

    unpinned.hub.log.clear()
    assert main(["models", "install", "mini-omni", "whisper-small-encoder", "snac-24khz"]) == 0
    capsys.readouterr()
    fetched = [path for _, path, _ in unpinned.hub.log if "/resolve/" in path]
    assert fetched and all(f"/resolve/{COMMIT}/" in path for path in fetched)  # the commit, never "main"
    for (asset_id, name), content in unpinned.contents.items():
        assert sha256_bytes((unpinned.data / "models" / asset_id / name).read_bytes()) == sha256_bytes(content)
    assert engine_options(unpinned.store)["omni"] is None
    assert main(["models", "verify", "mini-omni"]) == 0


def test_a_hub_that_disagrees_with_what_is_known_is_not_pinned(unpinned, capsys, monkeypatch):
    from app.cli import main
    from models.registry import catalog
    from models.registry.pins import FilePin, RepoPin

    pin, description = catalog.PINNABLE["mini-omni"]
    files = tuple(FilePin(f.name, f.size, "0" * 64 if f.name == "lit_model.pth" else None) for f in pin.files)
    monkeypatch.setitem(catalog.PINNABLE, "mini-omni", (RepoPin(pin.repo_id, None, files), description))
    assert main(["models", "pin", "mini-omni"]) == 2
    err = one_error_line(capsys)
    assert "lit_model.pth" in err and "not pinned" in err and "0" * 64 in err
    assert not (unpinned.data / "models" / "hub_pins.json").exists()


def test_a_git_file_unlike_its_listing_is_not_pinned(unpinned, capsys):
    from app.cli import main

    unpinned.hub.listing_lies["model_config.yaml"] = {"blobId": "1" * 40}
    assert main(["models", "pin", "mini-omni"]) == 2
    assert "does not match the hub's listing" in one_error_line(capsys)
    assert not (unpinned.data / "models" / "hub_pins.json").exists()


def test_bytes_unlike_the_pinned_hash_are_refused_at_install(unpinned, capsys):
    from app.cli import main

    lie = {"sha256": "2" * 64, "size": len(unpinned.contents[("snac-24khz", "pytorch_model.bin")]), "pointerSize": 134}
    unpinned.hub.listing_lies["pytorch_model.bin"] = {"lfs": lie}
    assert main(["models", "pin", "snac-24khz"]) == 0
    capsys.readouterr()
    assert main(["models", "install", "snac-24khz"]) == 2
    assert "2" * 64 in one_error_line(capsys)
    assert not (unpinned.data / "models" / "snac-24khz" / "pytorch_model.bin").exists()


def test_unknown_or_already_pinned_ids_and_a_broken_pins_file(unpinned, capsys, monkeypatch):
    from app.cli import main
    from models.registry import catalog

    assert main(["models", "pin", "whisper-base"]) == 2
    assert "unknown model 'whisper-base'" in one_error_line(capsys)
    monkeypatch.setattr(
        catalog,
        "BUILT_IN",
        catalog.BUILT_IN
        + catalog.hub_assets({"snac-24khz": _complete(unpinned)}, {"snac-24khz": catalog.PINNABLE["snac-24khz"][1]}),
    )
    assert main(["models", "pin", "snac-24khz"]) == 0
    assert "pinned in this version already" in capsys.readouterr().out

    broken = unpinned.data / "models" / "hub_pins.json"
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_text('{"schema": 1, "assets": {"mini-omni": {"repo_id": "x", "revision": "main"}}}')
    assert main(["models", "list"]) == 0  # a damaged pins file is kept aside, with one notice
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "hub_pins.json was damaged" in err[0] and "models pin" in err[0]
    assert not broken.exists() and len(list(broken.parent.glob("hub_pins.json.corrupt-*"))) == 1
    assert main(["models", "list"]) == 0 and capsys.readouterr().err == ""  # the notice came once


def _complete(unpinned):
    from models.registry.pins import FilePin, RepoPin

    return RepoPin(
        "hubertsiuzdak/snac_24khz",
        COMMIT,
        tuple(
            FilePin(name, len(content), sha256_bytes(content))
            for (asset_id, name), content in unpinned.contents.items()
            if asset_id == "snac-24khz"
        ),
    )
