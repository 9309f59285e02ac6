#!/usr/bin/env bash
# Open the app (or, with no display, answer the bundled spoken question).
# Setup (system packages, pip, the models) runs only when it has never finished here or when what it
# installs from has changed (pyproject.toml, packs.txt, scripts/setup.sh): every other start goes
# straight to the app and touches no network.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.setup-done

fingerprint() {
    if command -v sha256sum >/dev/null 2>&1; then
        cat pyproject.toml packs.txt scripts/setup.sh | sha256sum | cut -d' ' -f1
    else
        cat pyproject.toml packs.txt scripts/setup.sh | shasum -a 256 | cut -d' ' -f1
    fi
}

want=$(fingerprint)
if [[ ! -x .venv/bin/voice-companion || ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
    bash scripts/setup.sh
    echo "$want" > "$stamp"  # written only once setup has succeeded (set -e)
fi
exec .venv/bin/voice-companion "$@"
