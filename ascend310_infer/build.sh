#!/usr/bin/env bash
# Build the 310 harness and run its unit tests: bash ascend310_infer/build.sh [BUILD_DIR]
# MINDSPORE_PATH: the MindSpore inference package (with include/api/model.h and lib/libmindspore.so);
# default: the installed Python mindspore package, if it carries the C++ API (the pip wheel does not).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD_DIR="${1:-$HERE/build}"

for tool in cmake g++ ctest; do
    command -v "$tool" > /dev/null \
        || { echo "error: $tool is not installed; the harness needs cmake (>= 3.14), g++ (C++17) and ctest" >&2; exit 2; }
done
if [ -z "${MINDSPORE_PATH:-}" ]; then
    MINDSPORE_PATH="$(python3 -c 'import mindspore, os; print(os.path.dirname(mindspore.__file__))' 2> /dev/null | tail -n 1 || true)"
fi
if [ -n "$MINDSPORE_PATH" ] && [ -f "$MINDSPORE_PATH/include/api/model.h" ]; then
    echo "MindSpore C++ API: $MINDSPORE_PATH"
else
    echo "MindSpore C++ API not found (looked for ${MINDSPORE_PATH:-<MINDSPORE_PATH unset>}/include/api/model.h);"
    echo "building the harness library, bin_copy and the unit tests only, not main. On a 310 host, install"
    echo "the MindSpore inference package and set MINDSPORE_PATH to its folder."
fi

mkdir -p "$BUILD_DIR"
cmake -S "$HERE" -B "$BUILD_DIR" -DMINDSPORE_PATH="$MINDSPORE_PATH" > "$BUILD_DIR/cmake.log" 2>&1 \
    || { echo "error: cmake failed; see $BUILD_DIR/cmake.log" >&2; tail -n 20 "$BUILD_DIR/cmake.log" >&2; exit 1; }
rm -f "$BUILD_DIR/main"  # a main left by an earlier configure with MindSpore must not pass for this one
cmake --build "$BUILD_DIR" -j 2
(cd "$BUILD_DIR" && ctest --output-on-failure)
if [ -x "$BUILD_DIR/main" ]; then
    echo "built: harness_utils, $BUILD_DIR/main, $BUILD_DIR/bin_copy, $BUILD_DIR/test_utils; unit tests passed"
else
    echo "built: harness_utils, $BUILD_DIR/bin_copy, $BUILD_DIR/test_utils; unit tests passed"
    echo "main skipped: no MindSpore C++ API (needs ${MINDSPORE_PATH:-\$MINDSPORE_PATH}/include/api/model.h" \
         "and lib/libmindspore.so)"
fi
