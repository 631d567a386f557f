# Sourced by the NAT lab suites (nat-lab-test.sh, integrity-lab.sh, reliability-lab.sh): stopping the daemons
# a run started and removing its lab. The caller sets `lab` (scripts/nat-lab.sh),
# `prefix`, the array `pids` and `lab_up` (1 once this run's `up` succeeded: a failed
# `up` may mean the names belong to another run).

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
