#!/usr/bin/env bash
# The fuzzer (test/fuzz/run.mjs) against the addon built with AddressSanitizer + UBSan, with
# the host cache off so that freed memory is poisoned at once: a read of a freed storage is a
# report, not stale data. Arguments go to the fuzzer (default: 20,000 calls of seed 1).
#   bash scripts/fuzz-sanitized.sh [--calls N] [--seed S]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# The sanitizer build of the addon (npm run test:sanitize makes the same one; incremental).
mkdir -p build-asan
npx cmake-js compile --out build-asan --CDSUPCON_SANITIZE=ON --CDSUPCON_CUDA=OFF > build-asan/fuzz-build.log 2>&1 || { cat build-asan/fuzz-build.log; exit 1; }
[ $# -gt 0 ] || set -- --calls 20000 --seed 1
export SUPCON_ADDON="$root/build-asan/Release/supcon.node"
export SUPCON_HOST_CACHE_MB=0
export LD_PRELOAD
LD_PRELOAD=$(gcc -print-file-name=libasan.so)
# detect_leaks=0: V8 keeps memory until exit by design. allocator_may_return_null: the
# fuzzer asks for impossible sizes and expects a RangeError.
export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:allocator_may_return_null=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
exec node test/fuzz/run.mjs "$@"
