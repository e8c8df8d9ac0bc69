#!/usr/bin/env bash
# Builds every fuzz target, replays the committed regression inputs, then fuzzes each target for
# SECONDS (default 30). Exits non-zero on any finding; a crash input is copied to
# fuzz/artifacts/<target>/ (gitignored): minimize it with `cargo fuzz tmin` and commit it under
# fuzz/regressions/<target>/ once understood.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Works on the machine's stable toolchain: cargo-fuzz needs nightly-only flags (-Zsanitizer,
# sanitizer coverage), which RUSTC_BOOTSTRAP=1 unlocks on stable. Installs cargo-fuzz from
# crates.io when it is missing (kept in ~/.cargo/bin afterwards); the corpus grows in
# fuzz/corpus/<target>/ (gitignored) and is reused by the next run on the same machine.
set -euo pipefail
cd "$(dirname "$0")"

SECONDS_EACH="${1:-30}"
shift || true
ALL_TARGETS=(frame_decode core_ops core_pair session_bytes)
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL_TARGETS[@]}")

export RUSTC_BOOTSTRAP=1
# CI (CI=true) explores with a fixed seed, so whether a submission lands never hangs on the luck of
# one random run and any finding there reproduces; elsewhere each run explores anew (seed 0 lets
# libFuzzer pick one). SMUX_FUZZ_SEED overrides both.
if [ -n "${SMUX_FUZZ_SEED:-}" ]; then
    SEED="$SMUX_FUZZ_SEED"
elif [ "${CI:-}" = "true" ]; then
    SEED=1
else
    SEED=0
fi
export CARGO_TERM_COLOR=never
CARGO_FUZZ_VERSION=0.13.2

if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi
# libFuzzer is C++, built by the cc crate.
if ! command -v c++ >/dev/null 2>&1; then
    echo "== installing a C++ compiler"
    apt-get update -qq && apt-get install -y -qq g++
fi

# AddressSanitizer when the toolchain ships its runtime (it does on x86_64 Linux); without it
# otherwise: the targets are safe Rust, so the checks that matter are the harnesses' own.
SANITIZER=address
echo "== building ${ALL_TARGETS[*]}"
if ! cargo fuzz build -s "$SANITIZER" >build.log 2>&1; then
    tail -20 build.log
    echo "== the build with AddressSanitizer failed; building without a sanitizer"
    SANITIZER=none
    cargo fuzz build -s none
fi
rm -f build.log

BIN="target/x86_64-unknown-linux-gnu/release"
status=0

# Inputs that once failed must pass. Known defects (regressions/known-bugs/) are replayed with
# the strict checks and expected to still fail: when one passes, the defect is fixed and its input
# belongs in regressions/<target>/.
for t in "${ALL_TARGETS[@]}"; do
    if [ -d "regressions/$t" ] && [ -n "$(ls -A "regressions/$t")" ]; then
        echo "== replaying regressions/$t"
        if ! "$BIN/$t" -runs=1 "regressions/$t"/* >"/tmp/smux-fuzz-replay-$t.log" 2>&1; then
            tail -40 "/tmp/smux-fuzz-replay-$t.log"
            echo "!! a regression input of $t fails again"
            status=1
        fi
    fi
    if [ -d "regressions/known-bugs/$t" ]; then
        for f in "regressions/known-bugs/$t"/*; do
            if SMUX_FUZZ_STRICT=1 "$BIN/$t" -runs=1 "$f" >/dev/null 2>&1; then
                echo "== known defect no longer reproduces: $f (move it to regressions/$t/)"
            else
                echo "== known defect still reproduces: $f"
            fi
        done
    fi
done

for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    echo "== fuzzing $t for ${SECONDS_EACH}s"
    start=$(date +%s)
    # -timeout: one input running over 10 s is a hang; -rss_limit_mb: a memory blow-up is a finding.
    if cargo fuzz run -s "$SANITIZER" "$t" "corpus/$t" -- \
        -max_total_time="$SECONDS_EACH" -max_len=16384 -timeout=10 -rss_limit_mb=3072 \
        -seed="$SEED" -print_final_stats=1 >"/tmp/smux-fuzz-$t.log" 2>&1; then
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "/tmp/smux-fuzz-$t.log" | grep -o '[0-9]*$' || echo '?')
        echo "   $t: no finding in $(( $(date +%s) - start ))s, ${runs} inputs, corpus $(ls "corpus/$t" | wc -l)"
    else
        grep -E -A25 'panicked at|ERROR: libFuzzer|SUMMARY' "/tmp/smux-fuzz-$t.log" | head -60
        echo "!! $t: finding; input saved in fuzz/artifacts/$t/"
        status=1
    fi
done
exit $status
