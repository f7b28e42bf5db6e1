#!/usr/bin/env bash
# Sets up (packages + build) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
ctest --test-dir build --output-on-failure -j 2 --timeout 600
