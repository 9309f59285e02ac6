"""The shape of the code: imports flow app -> core -> models with no cycle between modules, and the
product runs without the benchmarks' dependencies."""

import ast
import os
import subprocess
import sys
import textwrap

import pytest
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROOMS = ("app", "core", "models", "bench")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for room in ROOMS for p in sorted((ROOT / room).rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every in-repo module `name` imports, at any depth of the file (a function's own import
    counts: it is a cycle that only a call order keeps from failing)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import mod` imports the module pkg.mod when there is one
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import a.b.c` of a name inside a module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path that starts and ends at the same module, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from core.audio import vad\n    import models.engine\n")
    assert _imports("core.x", source, {"core.audio", "core.audio.vad", "models.engine", "core.x"}) == {
        "core.audio.vad",
        "models.engine",
    }


def test_no_import_cycle():
    assert find_cycle(import_graph()) is None


def test_imports_flow_one_way():
    allowed = {
        "app": {"app", "core", "models", "bench"},
        "core": {"core", "models"},
        "models": {"models"},
        "bench": {"bench", "core", "models"},
    }
    wrong = [
        (name, target)
        for name, targets in import_graph().items()
        for target in targets
        if target.split(".")[0] not in allowed[name.split(".")[0]]
    ]
    assert wrong == []


def _run_without_jiwer(code: str, data: Path) -> subprocess.CompletedProcess:
    blocker = "import sys; sys.modules['jiwer'] = None\n"  # as if the bench extra were not installed
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "VOICE_COMPANION_DATA": str(data)}
    return subprocess.run(
        [sys.executable, "-c", blocker + textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_the_product_imports_without_the_bench_extra(tmp_path):
    product = sorted(name for name in _modules() if name.split(".")[0] in ("app", "core", "models"))
    proc = _run_without_jiwer(
        f"""
        import importlib
        for name in {product!r}:
            importlib.import_module(name)
        assert "jiwer" not in [m for m in sys.modules if sys.modules[m] is not None]
        print("ok")
    """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_bench_without_its_extra_says_how_to_install_it_in_one_line(tmp_path):
    proc = _run_without_jiwer(
        """
        sys.argv = ["voice-companion", "bench", "latency"]
        from app.cli import run
        run()
    """,
        tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "[bench]" in lines[0] and "jiwer" in lines[0]


def test_the_benchmarks_find_the_repository_files():
    """bench/ sits at the top of the repository: its paths to the bundled questions and to the
    cache beside the checkout start there."""
    from bench import duplex, latency, natural

    assert latency.QUESTIONS == ROOT / "assets" / "questions" == duplex.QUESTIONS
    assert sorted(latency.QUESTIONS.glob("q*.flac"))
    assert natural.CACHE_DIR == ROOT / ".cache" / "natural"


@pytest.mark.models
def test_the_default_engine_starts_without_importing_torch():
    """torch takes seconds to import and only Mini-Omni uses it: the cascade, the voice activity
    model and the end-of-turn model start (and are placed on devices) without it."""
    code = """
        import sys
        from core.audio.turn_end import load_turn_judge
        from core.audio.vad import load_vad
        from core.engines import load_cascade
        load_cascade(), load_vad(), load_turn_judge()
        print("torch" in sys.modules)
    """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "False"


def test_the_bundle_runs_faster_whisper_without_pyav():
    """The bundle leaves PyAV out (build.spec) and its runtime hook gives faster-whisper's import an
    empty module: the recognizer still loads, and a call that would need PyAV says so."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["av"] = None  # as in the bundle: `import av` fails
        exec(open({str(ROOT / "packaging" / "rthook_av.py")!r}).read())
        from faster_whisper import WhisperModel  # noqa: F401  (imports faster_whisper.audio, hence av)
        from faster_whisper.audio import decode_audio
        import av
        assert not hasattr(av, "__wrapped__")  # probing the module is answered, not an error
        try:
            decode_audio("speech.wav")
        except ImportError as exc:
            print("refused:", exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "refused: PyAV" in done.stdout and "not in this bundle" in done.stdout
