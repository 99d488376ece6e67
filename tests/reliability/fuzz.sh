#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz, libFuzzer with AddressSanitizer) of the parsers that
# take untrusted input: every target of fuzz/ for N seconds each, from its seeds
# (fuzz/seeds/<target>) and the corpus grown by earlier runs ($CARGO_TARGET_DIR/fuzz-corpus).
# Fails on a crash (a panic, a failed property, a sanitizer report), a hang (an input taking
# longer than $TIMEOUT s) or running out of memory; the input is kept under fuzz/artifacts/.
#
#   tests/reliability/fuzz.sh                  # 30 s per target (CI: .ci/run gives 20 s)
#   tests/reliability/fuzz.sh 600              # the long budget: 10 minutes per target
#   tests/reliability/fuzz.sh 60 relay_chunked # some targets only
#
# SANITIZER=none builds without AddressSanitizer (a shorter cold build; the code under test
# has no `unsafe`, so ASan mostly watches dependencies); switching between the two rebuilds
# the targets.
#
# Needs rustup (the nightly toolchain is installed when missing) and cargo-fuzz (installed
# when missing). Prints the executions of each target at the end.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PER_TARGET="${1:-30}"
shift || true
TIMEOUT="${TIMEOUT:-10}"
SANITIZER="${SANITIZER:-address}"
CARGO_FUZZ_VERSION="0.13.2"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
CORPORA="$CARGO_TARGET_DIR/fuzz-corpus"

rustup run nightly rustc --version >/dev/null 2>&1 ||
  rustup toolchain install nightly --profile minimal
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  cargo install --locked --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

cd "$ROOT/fuzz"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)

# One build of every target, before the clock starts: `-O` (release; fuzz/Cargo.toml turns
# debug assertions and overflow checks on, as cargo fuzz does by default) and ASan. The fuzz
# crate takes the platform crates without their default features: no AWS SDKs, no CLI.
build_start=$SECONDS
cargo +nightly fuzz build -O -s "$SANITIZER"
echo "fuzz: built ${#targets[@]} targets (sanitizer: $SANITIZER) in $((SECONDS - build_start)) s"

dict_of() {
  case "$1" in
    manifest | event_pattern) echo dicts/json.dict ;;
    relay_*) echo dicts/http.dict ;;
    path_*) echo dicts/path.dict ;;
  esac
}

declare -A executions
failed=()
for target in "${targets[@]}"; do
  corpus="$CORPORA/$target"
  mkdir -p "$corpus"
  log="$CARGO_TARGET_DIR/fuzz-$target.log"
  echo "== fuzz $target for $PER_TARGET s"
  if cargo +nightly fuzz run -O -s "$SANITIZER" "$target" "$corpus" "seeds/$target" -- \
      -max_total_time="$PER_TARGET" -timeout="$TIMEOUT" -rss_limit_mb=2048 \
      -dict="$(dict_of "$target")" -print_final_stats=1 >"$log" 2>&1; then
    :
  else
    failed+=("$target")
    tail -n 40 "$log" >&2
  fi
  executions[$target]="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  echo "   ${executions[$target]:-?} executions, corpus $(find "$corpus" -type f | wc -l) inputs"
done

echo "== fuzz: executions per target ($PER_TARGET s each)"
for target in "${targets[@]}"; do
  printf '  %-22s %s\n' "$target" "${executions[$target]:-?}"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]} (inputs under fuzz/artifacts/; reproduce with" \
    "cargo +nightly fuzz run -O TARGET fuzz/artifacts/TARGET/FILE in fuzz/)" >&2
  exit 1
fi
echo "fuzz: no crash, no hang"
