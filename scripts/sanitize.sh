#!/usr/bin/env bash
# AddressSanitizer + UBSan over the native code, two ways; any report fails the run.
#  1. The native tests (CPU core, no CUDA), with leak checking.
#  2. The addon itself built with the sanitizers, under the vitest suites that drive every
#     binding path (argument checks, errors, tensors, loss, layers, augmentations, data),
#     from a copy of the built package that loads that addon. Leak checking is off there:
#     V8 keeps memory until exit by design.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=build-sanitize
cmake -S . -B "$build" -G "Unix Makefiles" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSUPCON_SANITIZE=ON -DSUPCON_NATIVE_TESTS=ON -DSUPCON_CUDA=OFF > "$build.log" 2>&1 || { cat "$build.log"; exit 1; }
cmake --build "$build" --target loss_test augment_test -j "$(nproc)" >> "$build.log" 2>&1 || { cat "$build.log"; exit 1; }
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1 "$build/loss_test"
ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1 "$build/augment_test"

npx cmake-js compile --out build-asan --CDSUPCON_SANITIZE=ON --CDSUPCON_CUDA=OFF >> "$build.log" 2>&1 || { cat "$build.log"; exit 1; }
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
cp -r dist test bench native package.json vitest.config.mts "$tree/"   # bench/ and native/: the case table and its kernel list
mkdir -p "$tree/build"
ln -s "$root/build-asan/Release" "$tree/build/Release"
ln -s "$root/node_modules" "$tree/node_modules"
cd "$tree"
# allocator_may_return_null: the tests ask for impossible sizes and expect a RangeError.
LD_PRELOAD=$(gcc -print-file-name=libasan.so) \
ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:allocator_may_return_null=1 \
  npx vitest run --exclude test/report.test.ts --exclude test/fashion-mnist.test.ts
