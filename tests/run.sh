#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: installs what the tests need, then lints,
# type-checks, checks the bundled example is current, and runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1 \
  || ! command -v curl >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update && apt-get install -y --no-install-recommends prometheus curl chromium
  else
    echo "error: promtool/prometheus/curl/chromium missing: run" \
      "'sudo apt-get install -y prometheus curl chromium'" >&2
    exit 2
  fi
fi
python3 -m pip install -q -e '.[test]'

ruff check scaffold_metrics tests bench
black --check -q scaffold_metrics tests bench
mypy
lint-imports
(cd examples/memcached-operator && operator-metrics generate --check)

# pytest exits 5 when it collected no tests: that is a failure here too.
python3 -m pytest "$@"
