#!/usr/bin/env bash
# Set up everything, lint and type-check, then run the test suite (arguments go to pytest: -m "not
# models and not slow" is the fast tier). "No tests ran" counts as a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
# Tests keep their models beside the checkout, never in the user's own data folder.
export VOICE_COMPANION_DATA="${VOICE_COMPANION_DATA:-$PWD/.cache/data}"
bash scripts/setup.sh --test || exit 1
# Lint, formatting and types first: settings in pyproject.toml.
.venv/bin/ruff check . || exit 1
.venv/bin/ruff format --check . || exit 1
.venv/bin/mypy || exit 1
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
code=$?
if [[ $code -eq 5 ]]; then
    echo "no tests ran: failing" >&2
    exit 1
fi
exit $code
