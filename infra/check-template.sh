#!/usr/bin/env bash
# Lints template.yaml offline with cfn-lint and `sam validate --lint`, installing both into a
# venv under the target folder on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

CFN_LINT_VERSION="1.58.0"
SAM_CLI_VERSION="1.170.0"
venv="${CARGO_TARGET_DIR:-$PWD/target}/tools-venv"

if ! "$venv/bin/python" - <<PY 2>/dev/null
import importlib.metadata as m, sys
sys.exit(m.version("cfn-lint") != "$CFN_LINT_VERSION" or m.version("aws-sam-cli") != "$SAM_CLI_VERSION")
PY
then
  echo "check-template: installing cfn-lint $CFN_LINT_VERSION and aws-sam-cli $SAM_CLI_VERSION into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "cfn-lint==$CFN_LINT_VERSION" "aws-sam-cli==$SAM_CLI_VERSION"
fi

export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
"$venv/bin/cfn-lint" template.yaml
"$venv/bin/sam" validate --lint --template-file template.yaml
echo "check-template: template.yaml passes cfn-lint and sam validate --lint"
