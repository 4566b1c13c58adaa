#!/bin/bash
# OpenMP's waiting policy and the two-thread spiking training step (docs/results.md,
# "OpenMP's waiting policy"): bench_spiking_speed.py at T = 4 on two threads with libgomp's
# default spinning (GOMP_SPINCOUNT=300000) and with snnhw's default (OMP_WAIT_POLICY=PASSIVE),
# first on the idle machine, then with a busy loop pinned to CPU 1 (a second core that something
# else wants), and one thread beside that busy loop. Needs Linux's taskset and two CPUs.
#
# usage: bench/openmp_waits.sh OUT_DIR MODEL_ARGS...
#   MODEL_ARGS: bench_spiking_speed.py's --model SHAPE=CKPT --data-dir SHAPE=DIR pairs
# Writes OUT_DIR/<condition>.json (one per condition) and prints each condition's table rows.
set -euo pipefail
out=$1
shift
mkdir -p "$out"
args=("$@")
run() {
    local name=$1 setting=$2 threads=$3
    echo "== $name ($(date +%H:%M:%S), 1-min load $(cut -d' ' -f1 /proc/loadavg))"
    env "$setting" python "$(dirname "$0")/bench_spiking_speed.py" "${args[@]}" --T 4 --rounds 3 --steps 3 \
        --threads "$threads" --out "$out/$name.json" 2>&1 | grep -E "^\| [a-z]" | grep -v "^| shape"
}
run idle-spinning GOMP_SPINCOUNT=300000 2
run idle-passive OMP_WAIT_POLICY=PASSIVE 2
taskset -c 1 python3 -c "while True: pass" &
busy=$!
trap 'kill $busy 2>/dev/null || true' EXIT
sleep 2
run busy-spinning GOMP_SPINCOUNT=300000 2
run busy-passive OMP_WAIT_POLICY=PASSIVE 2
run busy-one-thread OMP_WAIT_POLICY=PASSIVE 1
