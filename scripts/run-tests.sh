#!/usr/bin/env bash
# The test suite in two shards at once.  Most tests wait on real subprocesses, brokers, TLS
# handshakes and timeouts rather than on the CPU, so on two cores two shards take little more
# than the longer one.  Extra arguments (e.g. --runslow) go to both.  Prints both shards'
# reports, then one closing line for the whole suite; exits non-zero when either shard failed.
set -u
cd "$(dirname "$0")/.." || exit 2
python=${PYTHON:-.venv/bin/python}

# Shard a: the fault suite, the outbox, the browser tests and everything quick; shard b: the
# bridge, the simulator, the agent client and the installer.  A test folder named in neither
# goes to b, so a new one can never be left out.
shard_a=(tests/faults tests/outbox tests/web tests/drivers tests/transforms tests/test_*.py)
shard_b=()
for dir in tests/*/; do
    dir=${dir%/}
    case " ${shard_a[*]} tests/support " in *" $dir "*) continue ;; esac
    ls "$dir"/test_*.py >/dev/null 2>&1 && shard_b+=("$dir")
done

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
"$python" -m pytest -q "$@" "${shard_a[@]}" >"$logs/a" 2>&1 &
pid_a=$!
"$python" -m pytest -q "$@" "${shard_b[@]}" >"$logs/b" 2>&1 &
pid_b=$!
wait "$pid_a"
code_a=$?
wait "$pid_b"
code_b=$?

echo "== shard a: ${shard_a[*]}"
cat "$logs/a"
echo "== shard b: ${shard_b[*]}"
cat "$logs/b"

count() {  # count WORD: the sum of "N WORD" in both shards' closing lines
    tail -n 1 -q "$logs/a" "$logs/b" | grep -oE "[0-9]+ $1" | awk '{n += $1} END {print n + 0}'
}
failed=$(($(count failed) + $(count error)))  # "error" also matches "errors"
echo "suite: $(count passed) passed, $failed failed, $(count skipped) skipped"
[ "$code_a" -eq 0 ] && [ "$code_b" -eq 0 ]
