#!/usr/bin/env bash
# Roaming on a QUIC path (issue 19 item 6, docs/nat-traversal.md "Roaming"): a client behind
# a cone NAT tunnels by name to a workhorse on the internet (public: no punch) that takes
# TCP from the bootstrap only, so the tunnel's direct path is a QUIC connection. One connection through the tunnel echoes
# 64 bytes every 100 ms (scripts/roaming-probe.mjs) while the client's public address
# changes (its router moves from 11.0.0.11 to 11.0.0.31 and forgets its mappings). That
# connection must live on: no reset, every echo byte-exact, its longest stall at most
# STALL_LIMIT_S. QUIC can follow a client to its new address, but @chainsafe/libp2p-quic
# turns migration off in its quinn server, so today this lab FAILS (the connection is reset
# once liveness drops the silent QUIC connection, 3 s after the change) and is not in CI:
# it reproduces why issue 19's "no reset on a QUIC path" is blocked, and goes green once the
# transport allows migration. A udx path cannot follow either (scripts/udx-move-check.mjs);
# docs/nat-traversal.md, "Roaming". Needs root; ~30 s. Logs: test-results/roaming-lab/.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$root/node_modules/.bin:$PATH"
lab="$root/scripts/nat-lab.sh"
cli="$root/packages/cli/bin/punchgate.js"
prefix="pgm$$-"
logs=${ROAMING_LAB_LOG_DIR:-$root/test-results/roaming-lab}
work=$(mktemp -d)
# Issue 19's target for an echo stall after an address change.
readonly STALL_LIMIT_S=${STALL_LIMIT_S:-5} START_TIMEOUT_S=30 ECHO_PORT=7000 TUNNEL_PORT=2222
readonly PROBE_S=14 CHANGE_AFTER_S=4
mkdir -p "$logs"; rm -f "$logs"/*.log "$logs"/*.json
pids=()
lab_up=0
[ "$(id -u)" -eq 0 ] || { echo "roaming-lab: needs root (network namespaces)" >&2; exit 2; }

# lab_cleanup, start_in, wait_for, stop_processes, lab_down
source "$root/scripts/lab-processes.sh"
on_failure="roaming-lab: FAILED; logs in $logs"
trap lab_cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "roaming-lab: $*" >&2; exit 1; }

bash "$lab" up "$prefix" cone public > "$logs/lab.log" 2>&1 || fail "lab up failed: $(tail -n 1 "$logs/lab.log")"
lab_up=1
boot="/ip4/11.0.0.2/tcp/4001/p2p/$(node "$cli" id --identity "$work/boot.key")"
client_id=$(node "$cli" id --identity "$work/client.key")

start_in boot "$logs/boot.log" node "$cli" --identity "$work/boot.key" \
  --listen /ip4/11.0.0.2/tcp/4001 --listen /ip4/11.0.0.2/udp/4001/quic-v1
wait_for "$logs/boot.log" '"event":"phase.changed"' || fail "bootstrap did not start"
start_in workhorse "$logs/echo.log" node "$root/scripts/echo-server.mjs" "$ECHO_PORT"
# The workhorse refuses TCP from anyone but the bootstrap (whose reach probe finds it
# public), so the client's direct dial to it can only be QUIC.
ip netns exec "${prefix}workhorse" nft -f - <<'NFT'
table inet roaming {
  chain input {
    type filter hook input priority 0; policy accept;
    iifname "lo" accept
    ip saddr 11.0.0.2 accept
    meta l4proto tcp reject with tcp reset
  }
}
NFT
start_in workhorse "$logs/workhorse.log" node "$cli" --identity "$work/workhorse.key" \
  --listen /ip4/11.0.0.22/tcp/4001 --listen /ip4/11.0.0.22/udp/4001/quic-v1 --announce /ip4/11.0.0.22/udp/4001/quic-v1 --bootstrap "$boot" --expose "echo=127.0.0.1:$ECHO_PORT" --allow "$client_id"
wait_for "$logs/workhorse.log" '"event":"service.published"' || fail "workhorse did not publish"
start_in client "$logs/client.log" node "$cli" --identity "$work/client.key" --control "$work/client.sock" \
  --bootstrap "$boot" --tunnel-by-name "echo@127.0.0.1:$TUNNEL_PORT"
wait_for "$logs/client.log" '"event":"tunnel.state".*"to":"direct"' || fail "the tunnel did not go live direct"

bash "$lab" exec "$prefix" client node "$root/scripts/roaming-probe.mjs" "$TUNNEL_PORT" "$PROBE_S" > "$logs/probe.json" &
probe=$!
pids+=("$probe")
sleep "$CHANGE_AFTER_S"
conn=$(grep '"event":"peer.connected"' "$logs/client.log" | grep -v '11.0.0.2/' | tail -n 1 | grep -o '"addr":"[^"]*"' || true)
case "$conn" in *quic*) ;; *) fail "the tunnel's direct connection is not QUIC: $conn" ;; esac

# The client's public address changes: router A moves to 11.0.0.31 and forgets its mappings.
router_a="${prefix}routerA"
changed_at=$(date +%s%3N)
ip netns exec "$router_a" sysctl -qw net.ipv4.conf.wan.promote_secondaries=1
ip -n "$router_a" addr add 11.0.0.31/8 dev wan
ip -n "$router_a" addr del 11.0.0.11/8 dev wan
bash "$lab" flush-nat "$prefix" routerA >/dev/null

status=0
wait "$probe" || status=$?
result=$(cat "$logs/probe.json")
echo "roaming-lab: the tunnelled connection over $conn: $result (address changed at $changed_at)"
[ "$status" -eq 0 ] || fail "the tunnelled connection did not live through the address change"
stall=$(node -e 'const r = JSON.parse(process.argv[1]); console.log(r.maxStallMs)' "$result")
[ "$stall" -le $(( STALL_LIMIT_S * 1000 )) ] || fail "the longest echo stall was $stall ms (limit ${STALL_LIMIT_S} s)"
echo "roaming-lab: ok: no reset, every echo byte-exact, longest stall $stall ms"
