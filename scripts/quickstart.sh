#!/usr/bin/env bash
# Sets up snnhw (scripts/setup.sh) and runs the main job on the bundled default model:
# `snnhw build --board kintex7` (quantize → generate → verify → board top → Yosys → report).
# Extra arguments go to `snnhw build`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/snnhw build --board kintex7 "$@"
