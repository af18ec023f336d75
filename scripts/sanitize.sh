#!/usr/bin/env bash
# Builds the native tests with AddressSanitizer + UBSan (CPU code, no CUDA) and runs them.
# Any report fails the run: halt_on_error, and leaks are checked at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-sanitize
cmake -S . -B "$build" -G "Unix Makefiles" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSUPCON_SANITIZE=ON -DSUPCON_NATIVE_TESTS=ON -DSUPCON_CUDA=OFF > "$build.log" 2>&1 || { cat "$build.log"; exit 1; }
cmake --build "$build" --target loss_test augment_test -j "$(nproc)" >> "$build.log" 2>&1 || { cat "$build.log"; exit 1; }
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
"$build/loss_test"
"$build/augment_test"
