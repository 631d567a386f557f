# Sourced by the NAT lab suites (nat-lab-test.sh, integrity-lab.sh, reliability-lab.sh):
# starting daemons in the lab, waiting for their logs, and stopping them and removing the
# lab however a run ends. The caller sets `lab` (scripts/nat-lab.sh), `prefix`, `work` (a
# temp directory), the array `pids`, `lab_up` (1 once this run's `up` succeeded: a failed
# `up` may mean the names belong to another run), and START_TIMEOUT_S for wait_for.

stop_processes() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    # A daemon that ignores SIGTERM for 10 s is killed.
    timeout 10 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}

lab_down() {
  if [ "$lab_up" -eq 1 ]; then
    bash "$lab" down "$prefix" >/dev/null 2>&1 || true
    lab_up=0
  fi
}

# The EXIT trap: stops what the run started, removes its lab and temp directory, and keeps
# the run's exit status. `on_failure`, when set, is printed to stderr if that status is not 0.
lab_cleanup() {
  local status=$?
  stop_processes
  lab_down
  rm -rf "$work"
  [ "$status" -ne 0 ] && [ -n "${on_failure:-}" ] && echo "$on_failure" >&2
  exit "$status"
}

# Runs CMD... in namespace HOST in the background, output to LOG; its pid joins pids.
start_in() {
  local host=$1 log=$2
  shift 2
  # Emptied here, before the background start: a waiter's `tail -F` that began before the
  # child's own redirection would otherwise read a previous run's lines from a reused LOG.
  : > "$log"
  bash "$lab" exec "$prefix" "$host" "$@" >> "$log" 2>&1 &
  pids+=($!)
}

# Waits (at most START_TIMEOUT_S) until LOG has a line matching PATTERN.
wait_for() {
  local log=$1 pattern=$2
  timeout "$START_TIMEOUT_S" grep -m1 -q -E "$pattern" <(tail -n +1 -F "$log" 2>/dev/null) &
  wait "$!"
}
