#!/usr/bin/env bash
# Relay failover in the NAT lab (issue 22): two public nodes (11.0.0.2 and 11.0.0.3), a
# workhorse behind a cone NAT exposing an echo service, and a client behind a SYMMETRIC
# NAT (no hole punch can work from there: its tunnel rides a relay) tunnelling to it by
# name. The workhorse holds a relay slot on each public node. A public node is killed
# (SIGKILL); the tunnel must echo again, byte-exact, by name, through the other one, its
# first byte at most FIRST_BYTE_LIMIT_S after the kill. Two scenarios:
#   listed:  both private nodes list both public nodes as bootstraps; the public node the
#            tunnel runs through is killed.
#   vouched: the second public node starts with --bootstrap P1 (--role auto) and becomes
#            public on P1's reach probe; the private nodes know only P1, which vouches for
#            the second (/punchgate/relays/1.0.0). P1, their only bootstrap, is killed.
# RELAY_FAILOVER_SCENARIOS=listed,vouched picks (default: both). Needs root. Logs: test-results/relay-failover/.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$root/node_modules/.bin:$PATH"
lab="$root/scripts/nat-lab.sh"
cli="$root/packages/cli/bin/punchgate.js"
prefix="pgf$$-"
logs=${RELAY_FAILOVER_LOG_DIR:-$root/test-results/relay-failover}
work=$(mktemp -d)
readonly FIRST_BYTE_LIMIT_S=${FIRST_BYTE_LIMIT_S:-15} START_TIMEOUT_S=30 ECHO_PORT=7000 TUNNEL_PORT=2222
readonly P1_IP=11.0.0.2 P2_IP=11.0.0.3
scenarios=${RELAY_FAILOVER_SCENARIOS:-listed,vouched}
mkdir -p "$logs"; rm -f "$logs"/*.log
pids=()
lab_up=0
own_ns=''

# lab_cleanup, start_in, stop_processes, wait_for
source "$root/scripts/lab-processes.sh"
on_failure="relay-failover: FAILED; logs in $logs"
cleanup() {
  local status=$?
  # Not under set -e: the status is handed on below with a failing `(exit ...)`.
  set +e
  stop_processes
  # The second public host's namespace, when this script made it (see second_public).
  if [ -n "$own_ns" ]; then ip netns del "$own_ns" 2>/dev/null || true; fi
  (exit "$status")
  lab_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "relay-failover: $*" >&2; exit 1; }
now_ms() { date +%s%3N; }

# The lab's host at 11.0.0.2's twin at 11.0.0.3: nat-lab.sh's own once it has one, else a
# namespace of ours on the lab's internet bridge. Sets p2_host, the name to pass to run_in.
second_public() {
  local host
  for host in boot2 public2; do
    if bash "$lab" exec "$prefix" "$host" true 2>/dev/null; then p2_host=$host; return; fi
  done
  own_ns="${prefix}pub2"
  ip netns add "$own_ns"
  ip -n "$own_ns" link set lo up
  ip netns exec "$own_ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "${prefix}inet" link add pub2 type veth peer name eth0 netns "$own_ns"
  ip -n "${prefix}inet" link set pub2 master br0 up
  ip -n "$own_ns" addr add "$P2_IP/8" dev eth0
  ip -n "$own_ns" link set eth0 up
  p2_host=":own"
}

# Runs CMD... in lab host HOST (or our own second public host) in the background, output to
# LOG; its pid is in $started.
run_in() {
  local host=$1 log=$2
  shift 2
  if [ "$host" = ":own" ]; then
    : > "$log"  # emptied before the start, as start_in does
    ip netns exec "$own_ns" "$@" >> "$log" 2>&1 &
    pids+=($!)
  else
    start_in "$host" "$log" "$@"
  fi
  started=${pids[-1]}
}

# Waits for a log to hold at least N lines matching PATTERN.
wait_count() {
  local log=$1 pattern=$2 n=$3
  timeout "$START_TIMEOUT_S" bash -c "until [ \$(grep -c -E '$pattern' '$log' 2>/dev/null || true) -ge $n ]; do sleep 0.2; done"
}

# One client connection through the tunnel, retried until a byte-exact echo of 64 KiB or
# the limit; prints the ms from T0 (epoch ms) to the first echoed byte of that connection.
first_byte_after() {
  bash "$lab" exec "$prefix" client node -e '
    const net = require("node:net"); const t0 = Number(process.argv[1]); const limit = Number(process.argv[2]) * 1000
    const payload = require("node:crypto").randomBytes(64 * 1024)
    function attempt () {
      if (Date.now() - t0 > limit + 5000) { console.log("none"); process.exit(1) }
      const s = net.connect(Number(process.argv[3]), "127.0.0.1"); const got = []; let first = 0
      s.on("error", () => {}); s.on("connect", () => s.end(payload))
      s.on("data", d => { if (first === 0) first = Date.now(); got.push(d) })
      s.on("close", () => Buffer.concat(got).equals(payload) ? (console.log(first - t0), process.exit(0)) : setTimeout(attempt, 100))
    }
    attempt()' "$1" "$FIRST_BYTE_LIMIT_S" "$TUNNEL_PORT"
}

# A field of the client daemon's status (JSON), by a JavaScript expression over `s`.
client_status() {
  bash "$lab" exec "$prefix" client node "$cli" status --control "$keys/client.sock" --json |
    node -e 'let t = ""; process.stdin.on("data", d => { t += d }).on("end", () => {
      const s = JSON.parse(t).daemon ?? {}; const workhorse = process.argv[2]
      console.log(eval(process.argv[1])) })' "$1" "$workhorse_id"
}

# The peer id of the relay the client's connection to the workhorse runs through.
client_relay() {
  client_status '((s.peers ?? []).find(p => p.peer === workhorse)?.addrs ?? []).map(a => /\/p2p\/([^/]+)\/p2p-circuit/.exec(a)).find(Boolean)?.[1] ?? ""'
}

scenario() {
  local name=$1
  keys="$work/$name"
  mkdir -p "$keys"
  local log="$logs/$name"
  p1="/ip4/$P1_IP/tcp/4001/p2p/$(node "$cli" id --identity "$keys/p1.key")"
  p2="/ip4/$P2_IP/tcp/4001/p2p/$(node "$cli" id --identity "$keys/p2.key")"
  p1_id=${p1##*/} p2_id=${p2##*/}
  client_id=$(node "$cli" id --identity "$keys/client.key")
  workhorse_id=$(node "$cli" id --identity "$keys/workhorse.key")
  local bootstraps=(--bootstrap "$p1" --bootstrap "$p2")

  run_in boot "$log-p1.log" node "$cli" --identity "$keys/p1.key" --control "$keys/p1.sock" --listen "/ip4/$P1_IP/tcp/4001"
  p1_pid=$started
  wait_for "$log-p1.log" '"event":"phase.changed"' || fail "$name: public node 1 did not start"
  if [ "$name" = vouched ]; then
    # Public on its own merit: P1's reach probe finds its listen port open.
    run_in "$p2_host" "$log-p2.log" node "$cli" --identity "$keys/p2.key" --control "$keys/p2.sock" --listen "/ip4/$P2_IP/tcp/4001" --bootstrap "$p1"
    p2_pid=$started
    wait_for "$log-p2.log" '"event":"role.changed".*"to":"public"' || fail "$name: the second node did not become public"
    bootstraps=(--bootstrap "$p1")
  else
    run_in "$p2_host" "$log-p2.log" node "$cli" --identity "$keys/p2.key" --control "$keys/p2.sock" --listen "/ip4/$P2_IP/tcp/4001"
    p2_pid=$started
    wait_for "$log-p2.log" '"event":"phase.changed"' || fail "$name: public node 2 did not start"
  fi

  run_in workhorse "$log-echo.log" node "$root/scripts/echo-server.mjs" "$ECHO_PORT"
  # The pair must stay relayed: TCP cannot punch symmetric/cone, but UDP punching (the birthday
  # method) does, so both run TCP-only here (--no-udp-punch).
  run_in workhorse "$log-workhorse.log" node "$cli" --identity "$keys/workhorse.key" --control "$keys/workhorse.sock" \
    "${bootstraps[@]}" --expose "echo=127.0.0.1:$ECHO_PORT" --allow "$client_id" --no-udp-punch
  # A slot on each public node, then the record that carries both circuits.
  wait_count "$log-workhorse.log" '"event":"relay.reserved"' 2 || fail "$name: the workhorse did not hold two relay slots within $START_TIMEOUT_S s"
  local reserved_at
  reserved_at=$(grep -n '"event":"relay.reserved"' "$log-workhorse.log" | sed -n 2p | cut -d: -f1)
  timeout "$START_TIMEOUT_S" grep -m1 -q '"event":"service.published"' <(tail -n "+$reserved_at" -F "$log-workhorse.log") ||
    fail "$name: the workhorse did not publish after its second reservation"

  run_in client "$log-client.log" node "$cli" --identity "$keys/client.key" --control "$keys/client.sock" \
    "${bootstraps[@]}" --tunnel-by-name "echo@127.0.0.1:$TUNNEL_PORT" --no-udp-punch
  local ms
  ms=$(first_byte_after "$(now_ms)") || fail "$name: no byte-exact echo through the tunnel at start"
  echo "relay-failover: $name: tunnel by name live, first byte after $ms ms"
  if [ "$name" = vouched ]; then
    # The client too holds a slot on the vouched-for node: with P1 gone, that keeps it in the mesh.
    wait_count "$log-client.log" '"event":"relay.reserved"' 2 || fail "$name: the client did not hold two relay slots"
  fi

  local through dead dead_pid survivor
  through=$(client_relay)
  if [ "$name" = vouched ] || [ "$through" = "$p1_id" ]; then
    dead=p1 dead_pid=$p1_pid survivor=$p2_id
  elif [ "$through" = "$p2_id" ]; then
    dead=p2 dead_pid=$p2_pid survivor=$p1_id
  else
    fail "$name: the client's connection to the workhorse runs through neither public node ('$through')"
  fi
  echo "relay-failover: $name: the tunnel runs through $([ "$through" = "$p1_id" ] && echo p1 || echo p2); killing $dead"

  local t0
  t0=$(now_ms)
  kill -9 "$dead_pid"; wait "$dead_pid" 2>/dev/null || true
  ms=$(first_byte_after "$t0") || fail "$name: no byte-exact echo within ${FIRST_BYTE_LIMIT_S} s of the kill"
  [ "$ms" -le $((FIRST_BYTE_LIMIT_S * 1000)) ] || fail "$name: first byte $ms ms after the kill (limit ${FIRST_BYTE_LIMIT_S} s)"
  through=$(client_relay)
  [ "$through" = "$survivor" ] || fail "$name: after the kill the client reaches the workhorse through '$through', not the survivor"
  echo "relay-failover: $name: $dead killed: 64 KiB echoed byte-exact through the other public node, first byte $ms ms after the kill"
  [ "$(client_status 's.phase')" = ready ] || fail "$name: the client is not ready after the kill"

  stop_processes
  bash "$lab" flush-nat "$prefix" routerA >/dev/null
  bash "$lab" flush-nat "$prefix" routerB >/dev/null
}

bash "$lab" up "$prefix" symmetric cone > "$logs/lab.log" 2>&1 || fail "lab up failed: $(tail -n 1 "$logs/lab.log")"
lab_up=1
second_public
for name in ${scenarios//,/ }; do
  case "$name" in
    listed|vouched) scenario "$name" ;;
    *) fail "unknown scenario '$name' (listed, vouched)" ;;
  esac
done
echo "relay-failover: ok"
