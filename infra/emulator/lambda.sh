# Installs cargo-lambda, whose `cargo lambda watch --only-lambda-apis` is the Lambda runtime
# emulator the tests run functions under (Runtime API + Invoke API). Source it, then call
# `lambda_emulator_install`: it exports PLINTH_CARGO_LAMBDA, which the tests read.
#
#   PLINTH_LAMBDA_VENV   where cargo-lambda is installed (default $CARGO_TARGET_DIR or target, /lambda-venv)

PLINTH_CARGO_LAMBDA_VERSION="1.9.2"
lambda_venv="${PLINTH_LAMBDA_VENV:-${CARGO_TARGET_DIR:-$PWD/target}/lambda-venv}"

lambda_emulator_install() {
  if ! { [ -x "$lambda_venv/bin/cargo-lambda" ] &&
         "$lambda_venv/bin/cargo-lambda" lambda --version 2>/dev/null | grep -q "$PLINTH_CARGO_LAMBDA_VERSION"; }; then
    echo "lambda emulator: installing cargo-lambda $PLINTH_CARGO_LAMBDA_VERSION into $lambda_venv" >&2
    python3 -m venv "$lambda_venv" &&
      "$lambda_venv/bin/pip" install --quiet --disable-pip-version-check \
        "cargo-lambda==$PLINTH_CARGO_LAMBDA_VERSION" || return 1
  fi
  export PLINTH_CARGO_LAMBDA="$lambda_venv/bin/cargo-lambda"
}

# Builds the platform's six functions as `sam build` builds them — cargo-lambda, the release
# profile with [profile.lambda]'s size settings (infra/sam-build.sh sets the same ones), for
# this host's x86_64 — once, into "$CARGO_TARGET_DIR/lambda/<function>/bootstrap", and exports
# PLINTH_LAMBDA_FUNCTIONS (that folder): the cell (functions/tests/cell) runs these binaries,
# and the size and start-time benchmarks (BENCHMARKS.md) measure the same ones.
lambda_functions_build() {
  local target="${CARGO_TARGET_DIR:-$PWD/target}"
  case "$target" in /*) ;; *) target="$PWD/$target" ;; esac
  [ -n "${PLINTH_CARGO_LAMBDA:-}" ] || lambda_emulator_install || return 1
  echo "lambda functions: cargo lambda build --profile lambda (into $target/lambda)" >&2
  CARGO_TARGET_DIR="$target" "$PLINTH_CARGO_LAMBDA" lambda build --quiet --profile lambda \
    --x86-64 --compiler cargo -p plinth-functions || return 1
  export PLINTH_LAMBDA_FUNCTIONS="$target/lambda"
}
