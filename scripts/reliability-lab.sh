#!/usr/bin/env bash
# Fault recovery in the NAT lab (docs/reliability.md): a client behind one cone NAT
# tunnels by name to a workhorse behind another, then, one at a time:
#   1. the bootstrap/relay is down 4 s -> the workhorse re-reserves and republishes <= 10 s
#                                        after it is back, and the tunnel still echoes
#   2. both routers forget their NAT mappings (conntrack flushed) -> the tunnel echoes again
#   3. the workhorse restarts         -> the tunnel by name finds it again and echoes
#   4. the client's public address changes (its router gets a new WAN address and
#      forgets its mappings)          -> the tunnel echoes again
# Each step must echo within RECOVERY_LIMIT_S (the address change within ADDRESS_CHANGE_LIMIT_S). Needs root. Logs: test-results/reliability/.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$root/node_modules/.bin:$PATH"
lab="$root/scripts/nat-lab.sh"
cli="$root/packages/cli/bin/punchgate.js"
prefix="pgr$$-"
logs=${RELIABILITY_LOG_DIR:-$root/test-results/reliability}
work=$(mktemp -d)
readonly RECOVERY_LIMIT_S=${RECOVERY_LIMIT_S:-15} RESERVE_LIMIT_S=10 BOOT_DOWN_S=4
# Measured 14.8 and 14.9 s on 2026-12-04 (~9.4 s until the dead connection was noticed); 3.4 and
# 3.8 s on 2026-12-05 (3 s liveness timeout, then the relay at once). Issue 19's target is 5 s;
# the limit leaves room for a loaded CI machine; docs/reliability.md.
readonly ADDRESS_CHANGE_LIMIT_S=${ADDRESS_CHANGE_LIMIT_S:-12} ECHO_PORT=7000 TUNNEL_PORT=2222
mkdir -p "$logs"; rm -f "$logs"/*.log
pids=()
lab_up=0

# lab_cleanup
source "$root/scripts/lab-processes.sh"
on_failure="reliability: FAILED; logs in $logs"
trap lab_cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "reliability: $*" >&2; exit 1; }
now_ms() { date +%s%3N; }

# The number of lines in a log now: a mark for wait_after.
log_mark() { if [ -f "$1" ]; then wc -l < "$1"; else echo 0; fi; }

# Waits for a line matching a pattern in a log, appended after line `mark`: it also sees a
# line written before the call, e.g. an event that followed the last one within milliseconds.
wait_after() {
  local file=$1 mark=$2 pattern=$3 seconds=$4
  timeout "$seconds" grep -m1 -q -E "$pattern" <(tail -n "+$((mark + 1))" -F "$file" 2>/dev/null)
}

# In namespace $1, start a process with output appended to $2 (a restart keeps one log); its pid is in $started.
start_appending_in() {
  local host=$1 log=$2; shift 2
  ip netns exec "$prefix$host" "$@" >> "$log" 2>&1 &
  started=$!
  pids+=("$started")
}

start_boot() {
  start_appending_in boot "$logs/boot.log" node "$cli" --identity "$work/boot.key" --control "$work/boot.sock" \
    --listen /ip4/11.0.0.2/tcp/4001 --listen /ip4/11.0.0.2/udp/4001/quic-v1
  boot_pid=$started
}
start_workhorse() {
  start_appending_in workhorse "$logs/workhorse.log" node "$cli" --identity "$work/workhorse.key" --control "$work/workhorse.sock" \
    --bootstrap "$boot" --expose "echo=127.0.0.1:$ECHO_PORT" --allow "$client_id"
  workhorse_pid=$started
}
stop() { kill "$1"; wait "$1" 2>/dev/null || true; }

# One echo through the tunnel, retried until it works or the limit ($1 s) passes; prints ms.
echo_through_tunnel() {
  ip netns exec "${prefix}client" node -e '
    const net = require("node:net"); const started = Date.now(); const limit = Number(process.argv[1]) * 1000
    const payload = require("node:crypto").randomBytes(4096)
    function attempt () {
      if (Date.now() - started > limit) { console.log("none"); process.exit(1) }
      const s = net.connect(Number(process.argv[2]), "127.0.0.1"); let got = Buffer.alloc(0)
      s.on("error", () => {}); s.on("connect", () => s.end(payload))
      s.on("data", d => { got = Buffer.concat([got, d]) })
      s.on("close", () => got.equals(payload) ? (console.log(Date.now() - started), process.exit(0)) : setTimeout(attempt, 200))
    }
    attempt()' "$1" "$TUNNEL_PORT"
}

check_echo() {
  local what=$1 limit=${2:-$RECOVERY_LIMIT_S} ms
  ms=$(echo_through_tunnel "$limit") || fail "$what: no byte-exact echo within ${limit} s"
  echo "reliability: $what: 4 KiB echoed byte-exact after $ms ms"
}

bash "$lab" up "$prefix" cone cone > "$logs/lab.log" 2>&1 || fail "lab up failed: $(tail -n 1 "$logs/lab.log")"
lab_up=1
boot="/ip4/11.0.0.2/tcp/4001/p2p/$(node "$cli" id --identity "$work/boot.key")"
client_id=$(node "$cli" id --identity "$work/client.key")
start_boot
start_appending_in workhorse "$logs/echo.log" node "$root/scripts/echo-server.mjs" "$ECHO_PORT"
mark=$(log_mark "$logs/workhorse.log")
start_workhorse
wait_after "$logs/workhorse.log" "$mark" '"event":"service.published"' 30 || fail "workhorse did not publish"
start_appending_in client "$logs/client.log" node "$cli" --identity "$work/client.key" --control "$work/client.sock" \
  --bootstrap "$boot" --tunnel-by-name "echo@127.0.0.1:$TUNNEL_PORT"
check_echo "start"

# 1. Bootstrap/relay restart. It stays down BOOT_DOWN_S, as a restart by a service manager
# or an upgrade does: the workhorse's redials back off meanwhile, and the reservation must
# still be back within RESERVE_LIMIT_S of the start (a CI run once failed here when the
# redial wait had grown to 7-15 s).
mark=$(log_mark "$logs/workhorse.log")
stop "$boot_pid"
sleep "$BOOT_DOWN_S"
t0=$(now_ms)
start_boot
wait_after "$logs/workhorse.log" "$mark" '"event":"relay.reserved"' "$RESERVE_LIMIT_S" || fail "no new relay reservation within $RESERVE_LIMIT_S s of the relay's restart"
reserved=$(( $(now_ms) - t0 ))
# Published again after the new reservation, often within milliseconds of it: look from that line on.
reserved_at=$(grep -n '"event":"relay.reserved"' "$logs/workhorse.log" | tail -n1 | cut -d: -f1)
wait_after "$logs/workhorse.log" "$reserved_at" '"event":"service.published"' "$RESERVE_LIMIT_S" || fail "service not republished within $RESERVE_LIMIT_S s"
echo "reliability: relay restart: reservation back after $reserved ms, record republished after $(( $(now_ms) - t0 )) ms"
check_echo "relay restart"

# 2. Both NATs forget every mapping.
bash "$lab" flush-nat "$prefix" routerA >/dev/null
bash "$lab" flush-nat "$prefix" routerB >/dev/null
check_echo "NAT mappings flushed"

# 3. The workhorse restarts (new connections, new NAT mappings, same peer id).
stop "$workhorse_pid"
start_workhorse
check_echo "workhorse restart"

# 4. The client's public address changes, as when an ISP hands out a new one: router A
# moves from 11.0.0.11 to 11.0.0.31, and its old mappings go with the old address.
router_a="${prefix}routerA"
ip netns exec "$router_a" sysctl -qw net.ipv4.conf.wan.promote_secondaries=1
ip -n "$router_a" addr add 11.0.0.31/8 dev wan
ip -n "$router_a" addr del 11.0.0.11/8 dev wan
bash "$lab" flush-nat "$prefix" routerA >/dev/null
check_echo "client address change" "$ADDRESS_CHANGE_LIMIT_S"

echo "reliability: ok"
