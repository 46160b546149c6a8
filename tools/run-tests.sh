#!/usr/bin/env bash
# The whole test suite, as CI runs it: set the machine up, then every tox
# environment that gates a change. Extra arguments go to tox.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
bash tools/test-setup.sh
exec .venv/bin/tox -e pep8,py3,functional,e2e "$@"
