# Sourced by the loopback suites that run real daemons (e2e-tunnel.sh, install-test.sh):
# stopping what the run started and removing its temp directory however it ends, waiting
# for a log line, and free ports. The caller sets `suite` (its name in messages), `logs`,
# `work` (a temp directory) and the array `pids`, then `trap suite_cleanup EXIT`.

# The EXIT trap: stops the run's processes, removes `work`, keeps the exit status, and on
# failure names the logs and shows their tails.
suite_cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
  if [ "$status" -ne 0 ]; then
    echo "$suite: FAILED; logs in $logs" >&2
    tail -n 20 "$logs"/*.log >&2 || true
  fi
  exit "$status"
}

# Waits (event-driven, bounded) until a log file has a line matching a pattern.
wait_for() {
  local file=$1 pattern=$2 seconds=${3:-30}
  if ! timeout "$seconds" grep -m1 -q -E "$pattern" <(tail -n +1 -F "$file" 2>/dev/null); then
    echo "$suite: timed out after ${seconds}s waiting for /$pattern/ in $(basename "$file")" >&2
    return 1
  fi
}

# A TCP port free on 127.0.0.1 right now.
free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
