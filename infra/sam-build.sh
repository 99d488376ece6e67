#!/usr/bin/env bash
# `sam build` of the platform's functions, offline: for ARCHITECTURE (arm64 or x86_64; this
# host's by default, so it needs no cross target), with the lambda profile's size settings
# applied to the release build SAM asks cargo-lambda for. Arguments go to `sam build`.
#
#   bash infra/sam-build.sh                          # .aws-sam/build/<Function>/bootstrap
#   ARCHITECTURE=arm64 bash infra/sam-build.sh       # needs the aarch64-unknown-linux-gnu target
#
# Deploy what it built with the same architecture (docs/aws.md walks through a first deploy):
#   sam deploy --config-env dev --parameter-overrides Stage=dev Architecture=x86_64 \
#     VpcId=vpc-… PrivateSubnetIds=subnet-…,subnet-…
#
# SAM runs `cargo lambda build --release [--arm64] --bin <Binary>` in functions/ once per
# function; CARGO_TARGET_DIR (target/lambda-target by default) keeps the compiled
# dependencies between the six builds and between runs. SAM CLI comes from the venv
# infra/check-template.sh makes, cargo-lambda from target/lambda-venv (made on first use).
set -euo pipefail
cd "$(dirname "$0")/.."

case "${ARCHITECTURE:-$(uname -m)}" in
  x86_64 | amd64) arch=x86_64 ;;
  arm64 | aarch64) arch=arm64 ;;
  *) echo "sam-build: ARCHITECTURE must be arm64 or x86_64" >&2; exit 2 ;;
esac

tools="${CARGO_TARGET_DIR:-$PWD/target}/tools-venv" # where infra/check-template.sh puts it
[ -x "$tools/bin/sam" ] || bash infra/check-template.sh >/dev/null
target="${CARGO_TARGET_DIR:-$PWD/target/lambda-target}"
lambda_venv="$PWD/target/lambda-venv"
if ! command -v cargo-lambda >/dev/null && [ ! -x "$lambda_venv/bin/cargo-lambda" ]; then
  echo "sam-build: installing cargo-lambda into $lambda_venv" >&2
  python3 -m venv "$lambda_venv"
  "$lambda_venv/bin/pip" install --quiet --disable-pip-version-check cargo-lambda
fi

# cargo resolves a relative CARGO_TARGET_DIR against its working directory, which SAM sets
# to functions/; and SAM copies each binary out of "$CARGO_TARGET_DIR/lambda/<Binary>".
case "$target" in /*) ;; *) target="$PWD/$target" ;; esac
mkdir -p "$target"

export PATH="$lambda_venv/bin:$PATH"
export CARGO_TARGET_DIR="$target"
export SAM_CLI_BETA_RUST_CARGO_LAMBDA=1 SAM_CLI_TELEMETRY=0
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
# [profile.lambda] for the release profile (cargo-lambda adds panic = "abort" itself).
export CARGO_PROFILE_RELEASE_PANIC="${CARGO_PROFILE_RELEASE_PANIC:-abort}"
export CARGO_PROFILE_RELEASE_OPT_LEVEL="${CARGO_PROFILE_RELEASE_OPT_LEVEL:-z}"
export CARGO_PROFILE_RELEASE_LTO="${CARGO_PROFILE_RELEASE_LTO:-fat}"
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS="${CARGO_PROFILE_RELEASE_CODEGEN_UNITS:-1}"

exec nice -n "${NICE:-0}" "$tools/bin/sam" build --parameter-overrides "Architecture=$arch" "$@"
