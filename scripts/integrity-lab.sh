#!/usr/bin/env bash
# Data integrity under packet loss in the NAT lab (docs/reliability.md; needs root): for
# the direct path (cone/cone) and the relay path (symmetric/symmetric), with random loss
# on the internet segment, a client tunnels by name to an echo service behind the other
# NAT, and scripts/integrity-probe.mjs sends 1 B, 64 KiB and 10 MiB of random data on new
# connections, half-closes, and checks length and sha256 of the echo. Every connection
# must be byte-exact and take the expected path.
#
#   INTEGRITY_LOSS_PCT   loss each way on the internet segment (default 1)
#   INTEGRITY_SIZES      bytes per connection (default "1 65536 10485760")
# Logs: test-results/integrity/<scenario>/.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$root/node_modules/.bin:$PATH"
lab="$root/scripts/nat-lab.sh"
cli="$root/packages/cli/bin/punchgate.js"
prefix="pgi$$-"
results=${INTEGRITY_RESULTS:-$root/test-results/integrity}
loss=${INTEGRITY_LOSS_PCT:-1}
read -r -a sizes <<< "${INTEGRITY_SIZES:-1 65536 10485760}"
readonly ECHO_PORT=7000 TUNNEL_PORT=2222 START_TIMEOUT_S=60
# name        client     workhorse  path
readonly SCENARIOS='
direct        cone       cone       direct
relay         symmetric  symmetric  relay
'
[ "$(id -u)" -eq 0 ] || { echo "integrity: needs root (network namespaces): sudo npm run test:integrity" >&2; exit 2; }
work=$(mktemp -d)
pids=()
lab_up=0

# lab_cleanup, start_in, wait_for
source "$root/scripts/lab-processes.sh"
on_failure="integrity: FAILED; logs in $results"
trap lab_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() { echo "integrity: $*" >&2; exit 1; }

run_scenario() {
  local name=$1 client=$2 workhorse=$3 path=$4 out boot opened
  out="$results/$name"
  rm -rf "$out"; mkdir -p "$out"
  # A fresh deployment: new keys, and the client trusts on first use again (its known-providers
  # file, beside its key, would pin the previous scenario's workhorse).
  rm -f "$work"/*.key "$work"/*.known-providers
  echo "integrity: $name path (client behind $client NAT, workhorse behind $workhorse), loss $loss% each way"
  bash "$lab" up "$prefix" "$client" "$workhorse" --loss "$loss" > "$out/lab.log" 2>&1 || fail "$name: lab up failed: $(tail -n 1 "$out/lab.log")"
  lab_up=1
  # Counters before and after the loss rule: what was sent and what got through.
  ip netns exec "${prefix}inet" nft insert rule bridge natlab forward ether type ip counter
  ip netns exec "${prefix}inet" nft add rule bridge natlab forward ether type ip counter

  boot="/ip4/11.0.0.2/tcp/4001/p2p/$(node "$cli" id --identity "$work/boot.key")"
  start_in boot "$out/boot.log" node "$cli" --identity "$work/boot.key" --control "$work/boot.sock" \
    --listen /ip4/11.0.0.2/tcp/4001 --listen /ip4/11.0.0.2/udp/4001/quic-v1
  wait_for "$out/boot.log" '"event":"node.started"' || fail "$name: bootstrap did not start"
  start_in workhorse "$out/echo.log" node "$root/scripts/echo-server.mjs" "$ECHO_PORT"
  wait_for "$out/echo.log" 'listening' || fail "$name: echo server did not start"
  start_in workhorse "$out/workhorse.log" node "$cli" --identity "$work/workhorse.key" --control "$work/workhorse.sock" \
    --bootstrap "$boot" --expose "echo=127.0.0.1:$ECHO_PORT" --allow "$(node "$cli" id --identity "$work/client.key")"
  wait_for "$out/workhorse.log" '"event":"service.published"' || fail "$name: workhorse did not publish echo"
  start_in client "$out/client.log" node "$cli" --identity "$work/client.key" --control "$work/client.sock" --log-level debug \
    --bootstrap "$boot" --tunnel-by-name "echo@127.0.0.1:$TUNNEL_PORT"
  wait_for "$out/client.log" "\"event\":\"tunnel.activated\".*\"path\":\"$path\"" ||
    fail "$name: the tunnel did not go live on the $path path within ${START_TIMEOUT_S} s (see $out/client.log)"

  bash "$lab" exec "$prefix" client node "$root/scripts/integrity-probe.mjs" "$TUNNEL_PORT" "${sizes[@]}" > "$out/probe.jsonl" ||
    fail "$name: not byte-exact: $(grep -v '"ok":true' "$out/probe.jsonl" | head -n 3)"
  node -e '
    const lines = require("node:fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(l => JSON.parse(l))
    for (const r of lines) console.log(`integrity: ${process.argv[2]}: ${r.bytes} B echoed byte-exact (sha256 ${r.sha256Echoed.slice(0, 12)}) in ${r.ms} ms`)
  ' "$out/probe.jsonl" "$name"
  # Each probe connection logs tunnel.opened with the path it took.
  opened=$(grep '"event":"tunnel.opened"' "$out/client.log" | grep -c "\"path\":\"$path\"" || true)
  [ "$opened" -ge "${#sizes[@]}" ] || fail "$name: only $opened of ${#sizes[@]} connections took the $path path"
  bash "$lab" status "$prefix" > "$out/lab-status.txt" 2>&1 || true
  read -r sent passed < <(ip netns exec "${prefix}inet" nft list chain bridge natlab forward |
    awk '/counter packets/ { for (i = 1; i < NF; i++) if ($i == "packets") n[++c] = $(i + 1) } END { print n[1], n[c] }')
  [ "$sent" -gt "$passed" ] || fail "$name: no packet was dropped ($sent sent, $passed passed): the loss rule did not apply"
  echo "integrity: $name: the internet segment dropped $((sent - passed)) of $sent IPv4 packets ($(awk -v s="$sent" -v p="$passed" 'BEGIN { printf "%.2f", 100 * (s - p) / s }')%)"
  stop_processes
  lab_down
}

mkdir -p "$results"
# fd 3: the daemons started inside must not read the scenario list from stdin.
while read -r -u 3 name client workhorse path; do
  [ -n "$name" ] && run_scenario "$name" "$client" "$workhorse" "$path"
done 3<<< "$SCENARIOS"
echo "integrity: ok"
