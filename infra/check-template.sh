#!/usr/bin/env bash
# Checks template.yaml offline: cfn-lint, `sam validate --lint`, the template's own tests
# (infra/*_test.py: how rules, dead letters, log groups and roles are wired), the secrets check
# (infra/check_secrets.py: nothing secret in an environment, an output or a parameter) and the
# checkov security scan (CloudFormation with SAM, and its secrets scanner). Any finding fails;
# a checkov check may be skipped only in the template, with its reason beside it
# (`Metadata: checkov: skip:` with a comment).
#
# cfn-lint and SAM CLI go into one venv under the target folder on first use, checkov into a
# second: it pins a boto3 that SAM CLI's pin excludes, so pip cannot put them in one.
set -euo pipefail
cd "$(dirname "$0")/.."

CFN_LINT_VERSION="1.58.0"
SAM_CLI_VERSION="1.170.0"
CHECKOV_VERSION="3.3.30"
target="${CARGO_TARGET_DIR:-$PWD/target}"
venv="$target/tools-venv"
checkov_venv="$target/checkov-venv"

# installed VENV PACKAGE=VERSION…: whether VENV has exactly these versions.
installed() {
  local venv=$1
  shift
  "$venv/bin/python" - "$@" <<'PY' 2>/dev/null
import importlib.metadata as m, sys
sys.exit(any(m.version(name) != version for name, version in (a.split("=") for a in sys.argv[1:])))
PY
}

if ! installed "$venv" "cfn-lint=$CFN_LINT_VERSION" "aws-sam-cli=$SAM_CLI_VERSION"; then
  echo "check-template: installing cfn-lint $CFN_LINT_VERSION and aws-sam-cli $SAM_CLI_VERSION into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "cfn-lint==$CFN_LINT_VERSION" "aws-sam-cli==$SAM_CLI_VERSION"
fi
if ! installed "$checkov_venv" "checkov=$CHECKOV_VERSION"; then
  echo "check-template: installing checkov $CHECKOV_VERSION into $checkov_venv" >&2
  python3 -m venv "$checkov_venv"
  "$checkov_venv/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
fi

export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
"$venv/bin/cfn-lint" template.yaml
"$venv/bin/sam" validate --lint --template-file template.yaml
"$venv/bin/python" -m unittest discover --start-directory infra --pattern '*_test.py'
"$venv/bin/python" infra/check_secrets.py template.yaml
# --skip-download: no guideline or policy download (offline); --compact: findings without code.
"$checkov_venv/bin/checkov" --file template.yaml --framework cloudformation secrets \
  --skip-download --compact --quiet
echo "check-template: template.yaml passes cfn-lint, sam validate --lint, its tests, the secrets check and checkov"
