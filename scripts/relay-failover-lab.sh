#!/usr/bin/env bash
# Relay failover in the NAT lab (issue 22): two public nodes (11.0.0.2 and 11.0.0.3), a
# workhorse behind a cone NAT exposing an echo service, and a client behind a SYMMETRIC
# NAT (no hole punch can work from there: its tunnel rides a relay) tunnelling to it by
# name. Both private nodes list both public nodes as bootstraps; the workhorse holds a relay
# slot on each. The public node the tunnel runs through is killed (SIGKILL); the tunnel must
# echo again, byte-exact, by name, through the other one, its first byte at most
# FIRST_BYTE_LIMIT_S after the kill. Needs root. Logs: test-results/relay-failover/.
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
mkdir -p "$logs"; rm -f "$logs"/*.log
pids=()
lab_up=0
own_ns=''

# lab_cleanup, start_in, wait_for
source "$root/scripts/lab-processes.sh"
on_failure="relay-failover: FAILED; logs in $logs"
cleanup() {
  local status=$?
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

# Runs CMD... in lab host HOST (or our own second public host) in the background, output to LOG.
run_in() {
  local host=$1 log=$2
  shift 2
  if [ "$host" = ":own" ]; then
    ip netns exec "$own_ns" "$@" > "$log" 2>&1 &
    pids+=($!)
  else
    start_in "$host" "$log" "$@"
  fi
  started=${pids[-1]}
}

# A public node: listens on IP's TCP port 4001 (splices on 4002).
start_public() {
  local host=$1 name=$2 ip=$3
  run_in "$host" "$logs/$name.log" node "$cli" --identity "$work/$name.key" --control "$work/$name.sock" \
    --listen "/ip4/$ip/tcp/4001"
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

bash "$lab" up "$prefix" symmetric cone > "$logs/lab.log" 2>&1 || fail "lab up failed: $(tail -n 1 "$logs/lab.log")"
lab_up=1
second_public
p1="/ip4/$P1_IP/tcp/4001/p2p/$(node "$cli" id --identity "$work/p1.key")"
p2="/ip4/$P2_IP/tcp/4001/p2p/$(node "$cli" id --identity "$work/p2.key")"
p1_id=${p1##*/} p2_id=${p2##*/}
client_id=$(node "$cli" id --identity "$work/client.key")

start_public boot p1 "$P1_IP"; p1_pid=$started
start_public "$p2_host" p2 "$P2_IP"; p2_pid=$started
wait_for "$logs/p1.log" '"event":"phase.changed"' || fail "public node 1 did not start"
wait_for "$logs/p2.log" '"event":"phase.changed"' || fail "public node 2 did not start"

run_in workhorse "$logs/echo.log" node "$root/scripts/echo-server.mjs" "$ECHO_PORT"
run_in workhorse "$logs/workhorse.log" node "$cli" --identity "$work/workhorse.key" --control "$work/workhorse.sock" \
  --bootstrap "$p1" --bootstrap "$p2" --expose "echo=127.0.0.1:$ECHO_PORT" --allow "$client_id"
# A slot on each public node, then the record that carries both circuits.
timeout "$START_TIMEOUT_S" bash -c "until [ \$(grep -c '\"event\":\"relay.reserved\"' '$logs/workhorse.log') -ge 2 ]; do sleep 0.2; done" ||
  fail "the workhorse did not hold two relay slots within $START_TIMEOUT_S s"
reserved_at=$(grep -n '"event":"relay.reserved"' "$logs/workhorse.log" | sed -n 2p | cut -d: -f1)
timeout "$START_TIMEOUT_S" grep -m1 -q '"event":"service.published"' <(tail -n "+$reserved_at" -F "$logs/workhorse.log") ||
  fail "the workhorse did not publish after its second reservation"

run_in client "$logs/client.log" node "$cli" --identity "$work/client.key" --control "$work/client.sock" \
  --bootstrap "$p1" --bootstrap "$p2" --tunnel-by-name "echo@127.0.0.1:$TUNNEL_PORT"
ms=$(first_byte_after "$(now_ms)") || fail "no byte-exact echo through the tunnel at start"
echo "relay-failover: tunnel by name live: first byte after $ms ms"

# Which public node the tunnel runs through: the relay in the client's connection(s) to the workhorse.
workhorse_id=$(node "$cli" id --identity "$work/workhorse.key")
through=$(bash "$lab" exec "$prefix" client node "$cli" status --control "$work/client.sock" --json |
  node -e 'let s = ""; process.stdin.on("data", d => { s += d }).on("end", () => {
    const peer = JSON.parse(s).daemon?.peers?.find(p => p.peer === process.argv[1])
    const m = (peer?.addrs ?? []).map(a => /\/p2p\/([^/]+)\/p2p-circuit/.exec(a)).find(Boolean)
    console.log(m?.[1] ?? "") })' "$workhorse_id")
case "$through" in
  "$p1_id") dead=p1 dead_pid=$p1_pid survivor=$p2_id ;;
  "$p2_id") dead=p2 dead_pid=$p2_pid survivor=$p1_id ;;
  *) fail "the client's connection to the workhorse runs through neither public node ('$through')" ;;
esac
echo "relay-failover: the tunnel runs through $dead (the $([ "$dead" = p1 ] && echo first || echo second) bootstrap); killing it"

t0=$(now_ms)
kill -9 "$dead_pid"; wait "$dead_pid" 2>/dev/null || true
ms=$(first_byte_after "$t0") || fail "no byte-exact echo within ${FIRST_BYTE_LIMIT_S} s of the kill"
[ "$ms" -le $((FIRST_BYTE_LIMIT_S * 1000)) ] || fail "first byte $ms ms after the kill (limit ${FIRST_BYTE_LIMIT_S} s)"
echo "relay-failover: $dead killed: 64 KiB echoed byte-exact, first byte $ms ms after the kill"

now=$(bash "$lab" exec "$prefix" client node "$cli" status --control "$work/client.sock" --json |
  node -e 'let s = ""; process.stdin.on("data", d => { s += d }).on("end", () => {
    const peer = JSON.parse(s).daemon?.peers?.find(p => p.peer === process.argv[1])
    console.log((peer?.addrs ?? []).join(" ")) })' "$workhorse_id")
[[ "$now" == *"/p2p/$survivor/p2p-circuit"* ]] || fail "after the kill the client reaches the workhorse over '$now', not through the survivor"
echo "relay-failover: ok (through the survivor: $now)"
