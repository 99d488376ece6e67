# Starts and stops moto server, the AWS emulator the tests run against.
# Source it, then call `emulator_start` and `emulator_stop`.
#
#   PLINTH_EMULATOR_PORT   port to serve on (default 4566)
#   PLINTH_EMULATOR_VENV   where moto is installed (default $CARGO_TARGET_DIR or target, /emulator-venv)
#
# Each run starts its own moto: when the port is taken (another run, LocalStack), a free
# port is used instead, so concurrent runs never stop each other's emulator.

PLINTH_MOTO_VERSION="5.2.5"
emulator_port="${PLINTH_EMULATOR_PORT:-4566}"
emulator_venv="${PLINTH_EMULATOR_VENV:-${CARGO_TARGET_DIR:-$PWD/target}/emulator-venv}"
emulator_pid=""
emulator_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

emulator_env() {
  emulator_url="http://127.0.0.1:${emulator_port}"
  export AWS_ENDPOINT_URL="$emulator_url"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  unset AWS_PROFILE AWS_SESSION_TOKEN
}

emulator_install() {
  if [ -x "$emulator_venv/bin/moto_server" ] &&
     "$emulator_venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$PLINTH_MOTO_VERSION')" 2>/dev/null; then
    return 0
  fi
  echo "emulator: installing moto $PLINTH_MOTO_VERSION into $emulator_venv" >&2
  python3 -m venv "$emulator_venv" &&
    "$emulator_venv/bin/pip" install --quiet --disable-pip-version-check \
      "moto[server]==$PLINTH_MOTO_VERSION"
}

# True when an emulator answers sts get-caller-identity at $emulator_url.
emulator_answers() {
  local python="$emulator_venv/bin/python"
  [ -x "$python" ] || return 1
  "$python" - "$emulator_url" <<'PY' >/dev/null 2>&1
import sys, boto3
boto3.client("sts", endpoint_url=sys.argv[1], region_name="us-east-1",
             aws_access_key_id="test", aws_secret_access_key="test").get_caller_identity()
PY
}

emulator_start() {
  emulator_install || { echo "emulator: could not install moto" >&2; return 1; }
  if ! "$emulator_venv/bin/python" -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1])))" "$emulator_port" 2>/dev/null; then
    emulator_port=$("$emulator_venv/bin/python" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
    echo "emulator: port ${PLINTH_EMULATOR_PORT:-4566} is taken; using $emulator_port" >&2
  fi
  emulator_env
  local log="${CARGO_TARGET_DIR:-$PWD/target}/moto-$emulator_port.log"
  mkdir -p "$(dirname "$log")"
  # moto_server, with DynamoDB's requests applied atomically (see moto_server.py).
  "$emulator_venv/bin/python" "$emulator_dir/moto_server.py" -H 127.0.0.1 -p "$emulator_port" >"$log" 2>&1 &
  emulator_pid=$!
  for _ in $(seq 1 60); do
    if emulator_answers; then
      echo "emulator: moto $PLINTH_MOTO_VERSION answering at $emulator_url (pid $emulator_pid)" >&2
      # No Docker here: moto's Lambda answers an invocation (an EventBridge rule's Lambda
      # target included) at once, instead of trying Docker for half a minute. What runs a
      # function's code is cargo-lambda's runtime emulator (infra/emulator/lambda.sh).
      "$emulator_venv/bin/python" -c "import sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1] + '/moto-api/config', data=b'{\"lambda\": {\"use_docker\": false}}', method='POST'))" "$emulator_url" >/dev/null ||
        echo "emulator: could not turn moto's Lambda Docker invocations off" >&2
      return 0
    fi
    kill -0 "$emulator_pid" 2>/dev/null || break
    sleep 0.5
  done
  echo "emulator: moto did not answer at $emulator_url; its log:" >&2
  tail -n 20 "$log" >&2
  emulator_stop
  return 1
}

emulator_stop() {
  if [ -n "$emulator_pid" ]; then
    kill "$emulator_pid" 2>/dev/null && wait "$emulator_pid" 2>/dev/null
    emulator_pid=""
  fi
  return 0
}
