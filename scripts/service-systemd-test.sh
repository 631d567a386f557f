#!/usr/bin/env bash
# `punchgate up` / `down` against a real systemd user manager, on a machine where systemd
# is installed but is not PID 1 (a container, CI). `systemd --user` runs in a private mount
# namespace in which /run/systemd/system exists (systemd refuses to start without it), with
# a temp HOME and XDG_RUNTIME_DIR; nothing outside the temp dir is touched.
#
#   scripts/service-systemd-test.sh        needs root, unshare, ss, systemd installed
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "service-systemd-test: $*" >&2; exit 1; }

if [ "${1:-}" != --inner ]; then
  [ "$(id -u)" -eq 0 ] || die "must run as root (a private mount namespace)"
  systemd_bin=$(ls /lib/systemd/systemd /usr/lib/systemd/systemd 2>/dev/null | head -n1 || true)
  [ -n "$systemd_bin" ] || die "systemd is not installed (apt-get install systemd)"
  for tool in unshare systemctl ss; do command -v "$tool" >/dev/null || die "$tool not found"; done
  dir=$(mktemp -d /tmp/punchgate-systemd.XXXXXX)
  trap 'rm -rf "$dir"' EXIT
  unshare --mount --propagation private "$0" --inner "$dir" "$systemd_bin"
  exit
fi

dir=$2 systemd_bin=$3
export HOME=$dir/home XDG_RUNTIME_DIR=$dir/run
mkdir -p "$HOME" && install -d -m 0700 "$XDG_RUNTIME_DIR"
# Only this namespace sees the tmpfs: the host's /run/systemd is untouched.
if [ -d /run/systemd ]; then mount -t tmpfs none /run/systemd; else mount -t tmpfs none /run; fi
mkdir -p /run/systemd/system

"$systemd_bin" --user >"$dir/systemd.log" 2>&1 &
manager=$!
daemons=()
cleanup() {
  kill "$manager" 2>/dev/null || true
  wait "$manager" 2>/dev/null || true
  # The manager stops its units when it exits; this is for a manager that crashed.
  for pid in "${daemons[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
for _ in $(seq 100); do [ -S "$XDG_RUNTIME_DIR/systemd/private" ] && break; sleep 0.1; done
[ -S "$XDG_RUNTIME_DIR/systemd/private" ] || { cat "$dir/systemd.log" >&2; die "systemd --user did not start"; }

punchgate() { node_modules/.bin/node packages/cli/bin/punchgate.js "$@"; }
main_pid() { systemctl --user show --property=MainPID --value punchgate.service; }

# Waits until the unit runs a daemon whose environment holds $1, listening on TCP; prints its pid.
await_daemon() {
  local want=$1 pid
  for _ in $(seq 150); do
    pid=$(main_pid)
    if [ "$pid" != 0 ] && tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "$want" \
      && ss -ltnpH 2>/dev/null | grep -q "pid=$pid,"; then
      echo "$pid"
      return
    fi
    sleep 0.2
  done
  systemctl --user status punchgate.service --no-pager >&2 || true
  die "no daemon with $want listening"
}

punchgate up --listen /ip4/127.0.0.1/tcp/0 --expose echo=127.0.0.1:7000 --allow-any >"$dir/up.out"
first=$(await_daemon PUNCHGATE_EXPOSE=echo=127.0.0.1:7000)
daemons+=("$first")
[ "$(systemctl --user is-enabled punchgate.service)" = enabled ] || die "unit not enabled"
echo "service-systemd-test: up started the daemon (pid $first)"

punchgate up --expose other=127.0.0.1:7001 >"$dir/up2.out"
second=$(await_daemon PUNCHGATE_EXPOSE=other=127.0.0.1:7001)
daemons+=("$second")
[ "$second" != "$first" ] || die "a re-run did not restart the daemon"
kill -0 "$first" 2>/dev/null && die "the first daemon still runs"
tr '\0' '\n' <"/proc/$second/environ" | grep -qxF PUNCHGATE_LISTEN=/ip4/127.0.0.1/tcp/0 || die "a re-run lost --listen"
[ "$(systemctl --user show --property=NRestarts --value punchgate.service)" = 0 ] || die "the daemon crashed and was restarted"
echo "service-systemd-test: a re-run restarted it with the changed setting (pid $second)"

punchgate down >"$dir/down.out"
systemctl --user cat punchgate.service >/dev/null 2>&1 && die "unit still known after down"
for _ in $(seq 50); do kill -0 "$second" 2>/dev/null || break; sleep 0.1; done
kill -0 "$second" 2>/dev/null && die "daemon still runs after down"
[ -f "$HOME/.config/punchgate/punchgate.env" ] || die "down removed the settings"
[ -f "$HOME/.local/state/punchgate/identity.key" ] || die "down removed the identity"
echo "service-systemd-test: down stopped and removed it, kept settings and identity"
echo "service-systemd-test: passed"
