"""The speed cost of the bundle's portable llama.cpp against the checkout's native build, in one
run: the default chat model (Qwen2.5-Coder-0.5B Q4) evaluates the same prompt and greedily writes
the same 64 tokens in each build, turn about (native, portable, native, ...) so that a busy
machine slows both alike. Prints one JSON object.
    python scripts/llama_builds.py PORTABLE_SITE [--rounds N]
PORTABLE_SITE: the folder holding the portable llama_cpp package (scripts/package.sh's cache).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPT = (
    "You are a friendly voice companion. Answer in two short spoken sentences.\n"
    "User: What should I cook for dinner tonight? I have rice, eggs and some spinach.\nAssistant:"
)

# One timing in a fresh interpreter: which llama_cpp it imported, prompt and generation speed.
_ONE = """
import json, sys, time
import llama_cpp
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=1024, n_threads=2, n_threads_batch=2, verbose=False)
tokens = llm.tokenize(sys.argv[2].encode())
t0 = time.perf_counter(); llm.eval(tokens); t1 = time.perf_counter()
out = []
for _ in range(64):
    token = llm.sample(temp=0.0)
    out.append(token); llm.eval([token])
t2 = time.perf_counter()
print(json.dumps({"lib": llama_cpp.__file__, "info": llama_cpp.llama_print_system_info().decode(),
                  "prompt_tok_s": len(tokens) / (t1 - t0), "gen_tok_s": 64 / (t2 - t1),
                  "text": llm.detokenize(out).decode(errors="replace")}))
"""


def one(model: Path, site: Path | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    proc = subprocess.run(
        [sys.executable, "-c", _ONE, str(model), PROMPT], env=env, capture_output=True, text=True, cwd="/", timeout=600
    )
    if proc.returncode != 0:
        raise SystemExit(f"llama_builds: {proc.stderr.strip().splitlines()[-1]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("portable_site", type=Path)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    if not (args.portable_site / "llama_cpp").is_dir():
        print(f"llama_builds: no llama_cpp package in {args.portable_site}", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    from models.registry import ModelStore

    model = ModelStore().ensure("qwen2.5-coder-0.5b-instruct-q4") / "model.gguf"
    runs: dict[str, list[dict]] = {"native": [], "portable": []}
    for _ in range(args.rounds):
        runs["native"].append(one(model, None))
        runs["portable"].append(one(model, args.portable_site))
    result = {"bench": "llama_builds", "rounds": args.rounds}
    for name, rs in runs.items():
        result[name] = {
            "lib": rs[0]["lib"],
            "system_info": rs[0]["info"],
            "prompt_tok_s": round(statistics.median(r["prompt_tok_s"] for r in rs), 1),
            "gen_tok_s": round(statistics.median(r["gen_tok_s"] for r in rs), 1),
        }
    result["same_text"] = len({r["text"] for rs in runs.values() for r in rs}) == 1
    result["portable_vs_native_gen"] = round(result["portable"]["gen_tok_s"] / result["native"]["gen_tok_s"], 3)
    result["portable_vs_native_prompt"] = round(
        result["portable"]["prompt_tok_s"] / result["native"]["prompt_tok_s"], 3
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
