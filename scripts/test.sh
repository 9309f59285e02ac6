#!/usr/bin/env bash
# Set up everything, lint and type-check, then run the whole test suite with --slow: the tests marked
# slow and 600 cases of each property test (tests/conftest.py). Arguments go to pytest. The fast tier
# is `.venv/bin/python -m pytest -m "not models"` (add `-n 2 --dist loadfile` to use both cores).
# "No tests ran" counts as a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
# Tests keep their models beside the checkout, never in the user's own data folder.
export VOICE_COMPANION_DATA="${VOICE_COMPANION_DATA:-$PWD/.cache/data}"
bash scripts/setup.sh --test || exit 1
# Lint, formatting and types first: settings in pyproject.toml.
.venv/bin/ruff check . || exit 1
.venv/bin/ruff format --check . || exit 1
.venv/bin/mypy || exit 1
.venv/bin/python -m pytest -q -p no:cacheprovider --slow "$@"
code=$?
if [[ $code -eq 5 ]]; then
    echo "no tests ran: failing" >&2
    exit 1
fi
exit $code
