#!/usr/bin/env bash
# `npm run test:cuda-emulated`: every CUDA kernel in native/cuda on the emulated backend
# (native/cuda/emu; docs/GPU.md), against its CPU twin, from the case table that
# `npm run gpu:check` runs on a GPU (bench/cuda-cases.ts), at small sizes:
#   1. the emulator's own tests (planted defects it must report, intrinsics);
#   2. the case table with the guard page after every buffer and two thread schedules
#      (results must be the same bits), then with the guard page before every buffer;
#   3. the CUDA tests of the vitest suites on the emulated device;
#   4. 1 and 2 again with the emulator and the kernels built with AddressSanitizer + UBSan.
# Ends with `emulated CUDA: K kernels, N cases, F failures` over all the runs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
log="$root/build-emu.log"
: > "$log"
cases=0 failures=0 kernels=0

# Adds the counts of a run's closing line `emulated CUDA: K kernels, N cases, F failures`.
tally() {
  local line
  line=$(grep -E '^emulated CUDA: [0-9]+ kernels, [0-9]+ cases, [0-9]+ failures$' "$1" | tail -1 || true)
  if [[ -z "$line" ]]; then
    echo "no closing line from $2"; failures=$((failures + 1)); return
  fi
  read -r k n f < <(echo "$line" | sed -E 's/^emulated CUDA: ([0-9]+) kernels, ([0-9]+) cases, ([0-9]+) failures$/\1 \2 \3/')
  (( k > kernels )) && kernels=$k
  cases=$((cases + n)); failures=$((failures + f))
}

# Runs the emulator's tests; their checks count as cases.
emu_tests() {
  local out
  out=$(mktemp)
  if "$1" > "$out" 2>&1; then :; fi
  cat "$out"
  local line
  line=$(grep -E '^emu_test: [0-9]+ checks, [0-9]+ failures$' "$out" || true)
  if [[ -z "$line" ]]; then echo "emu_test did not finish"; failures=$((failures + 1)); return; fi
  read -r n f < <(echo "$line" | sed -E 's/^emu_test: ([0-9]+) checks, ([0-9]+) failures$/\1 \2/')
  cases=$((cases + n)); failures=$((failures + f))
  rm -f "$out"
}

# The case table on one build: $1 the addon, then settings as VAR=value words.
case_table() {
  local addon=$1; shift
  local out
  out=$(mktemp)
  echo "-- case table: $*"
  env SUPCON_ADDON="$addon" SUPCON_CUDA_CACHE=0 "$@" node dist/bench/gpu-check.js --emulated > "$out" 2>&1 || true
  # Failures, the stage summaries and the list of every kernel with its launches.
  grep -E '^(FAIL|[a-z].*: [0-9]+ of [0-9]+ )' "$out" || true
  sed -n '/^kernels of native\/cuda/,$p' "$out"
  tally "$out" "gpu-check --emulated ($*)"
  rm -f "$out"
}

step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }

step "build: the addon and the emulator's tests on the emulated backend"
npx cmake-js compile --out build-emu --CDSUPCON_CUDA_EMULATION=ON >> "$log" 2>&1 || { cat "$log"; exit 1; }
addon="$root/build-emu/Release/supcon.node"

step "the emulator's own tests"
emu_tests build-emu/emu_test

step "the case table"
case_table "$addon" SUPCON_EMU_GUARD=after SUPCON_EMU_SCHEDULES=2
case_table "$addon" SUPCON_EMU_GUARD=before SUPCON_EMU_SCHEDULES=1

step "the CUDA tests of the vitest suites on the emulated device"
if SUPCON_ADDON="$addon" SUPCON_CUDA_CACHE=0 npx vitest run test/cuda.test.ts test/nn-cuda.test.ts test/train-cuda.test.ts test/augment-device.test.ts test/augment.test.ts test/contrast.test.ts -t 'GPU|CUDA|CPU|select'; then
  echo "vitest on the emulated device: passed"
else
  echo "vitest on the emulated device: FAILED"; failures=$((failures + 1))
fi

step "build: the same with AddressSanitizer + UBSan"
npx cmake-js compile --out build-emu-asan --CDSUPCON_CUDA_EMULATION=ON --CDSUPCON_SANITIZE=ON >> "$log" 2>&1 || { cat "$log"; exit 1; }
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 emu_tests build-emu-asan/emu_test
# allocator_may_return_null: tests ask for impossible sizes and expect a RangeError.
case_table "$root/build-emu-asan/Release/supcon.node" SUPCON_EMU_GUARD=before SUPCON_EMU_SCHEDULES=1 \
  LD_PRELOAD="$(gcc -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:allocator_may_return_null=1

step "done"
echo "emulated CUDA: $kernels kernels, $cases cases, $failures failures"
(( failures == 0 ))
