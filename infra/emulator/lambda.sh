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
