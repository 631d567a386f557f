#!/usr/bin/env bash
# IPv6 lab (npm run test:ipv6-lab; needs root; ~40 s): two hosts with global IPv6 addresses
# behind stateful IPv6 firewalls (scripts/nat-lab.sh up --ipv6: replies to connections the
# host opened get in, nothing else) must punch over IPv6 and go direct. Their IPv4 sides sit
# behind symmetric NATs, which no TCP punch gets through (nat-lab-test.sh symmetric-symmetric),
# so a direct path here can only be the IPv6 one. Per scenario, as nat-lab-test.sh: bootstrap,
# workhorse exposing an echo server, client tunnelling to it by name; the first echoed byte is
# timed from the client's launch, IPV6LAB_BYTES go through byte-exact; the tunnel must end
# direct, over a /ip6/ connection (scripts/nat-lab-report.mjs judges, then the address check).
#
#   IPV6LAB_SCENARIOS  comma list of scenario names (default: all, see below)
#   IPV6LAB_BYTES      bytes echoed per scenario (default 16777216 = 16 MiB)
#   IPV6LAB_RESULTS    results directory (default test-results/ipv6-lab)
set -euo pipefail

# name          bootstrap given as      target path  first byte limit (s)  IPv6 firewalls
#   boot6:  the bootstrap's IPv6 address: relay, identify and the punch's coordination all run
#           over IPv6, and the bootstrap observes each node's IPv6 address and port.
#   boot4:  its IPv4 address only: nothing observes the nodes' IPv6 addresses; the candidates
#           come from their own interfaces (holepunch/observed.ts).
#   fw6nosyn: firewalls that also drop every inbound bare TCP SYN (nat-lab.sh --ipv6-nosyn):
#           no TCP punch gets through, so the direct path must be a UDP (udx) punch over IPv6.
# The target is the client's punch round 1 ending direct over /ip6/ (check_ipv6), which load does
# not change; the first byte is measured and reported, its limit only says the tunnel worked: at
# load 6-9 it came at 2.4-4.6 s, at load 18 at 10.7-14.7 s, Node's start-up alone taking 6.1-8.2 s
# of it (docs/nat-traversal.md "IPv6").
readonly SCENARIOS='
fw6-boot6       ip6                     direct       30                     stateful
fw6-boot4       ip4                     direct       30                     stateful
fw6nosyn-boot6  ip6                     direct       30                     nosyn
'
readonly BOOT_ADDR=11.0.0.2 BOOT_ADDR6=2001:db9::2 WORKHORSE_ADDR6=2001:db9:b::2 PORT=4001 ECHO_PORT=7000 TUNNEL_PORT=2222
readonly IPV4_KIND=symmetric
readonly START_TIMEOUT_S=30

root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$root/node_modules/.bin:$PATH"
lab="$root/scripts/nat-lab.sh"
cli="$root/packages/cli/bin/punchgate.js"
prefix=pg6-$$-
results=${IPV6LAB_RESULTS:-$root/test-results/ipv6-lab}
bytes=${IPV6LAB_BYTES:-16777216}
[ "$(id -u)" -eq 0 ] || { echo "ipv6-lab: needs root (network namespaces): sudo npm run test:ipv6-lab" >&2; exit 2; }
work=$(mktemp -d)
pids=()
lab_up=0

# lab_cleanup, start_in, wait_for, stop_processes, lab_down
source "$root/scripts/lab-processes.sh"
trap lab_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

punchgate_id() { node "$cli" id --identity "$1"; }
json_string() { node -e 'process.stdout.write(JSON.stringify(process.argv[1]))' -- "$1"; }

write_scenario() {
  local out=$1 path=$2 limit=$3 peer=$4 error=$5
  {
    printf '{"client":"fw6 (v4 %s)","workhorse":"fw6 (v4 %s)","expectPath":"%s","limitSeconds":%s,' "$IPV4_KIND" "$IPV4_KIND" "$path" "$limit"
    printf '"workhorsePeer":"%s","clientStartedMs":%s,"measuredUntilMs":%s,"impairments":"none"' "$peer" "$client_started" "$measured_until"
    [ -n "$error" ] && printf ',"error":%s' "$(json_string "$error")"
    printf '}\n'
  } > "$out/scenario.json"
}

setup_error=''
client_started=0
measured_until=0
run_scenario() {
  local out=$1 family=$2 firewall=$3
  local boot_id boot client_id
  # Both nodes listen on both families, on one port, as docs/configuration.md shows.
  local listen=(--listen "/ip4/0.0.0.0/tcp/$PORT" --listen "/ip6/::/tcp/$PORT")

  "$lab" up "$prefix" "$IPV4_KIND" "$IPV4_KIND" "$( [ "$firewall" = nosyn ] && echo --ipv6-nosyn || echo --ipv6)" > "$out/lab.log" 2>&1 ||
    { setup_error="lab up failed: $(tail -n 1 "$out/lab.log")"; return 1; }
  lab_up=1

  boot_id=$(punchgate_id "$work/boot.key")
  if [ "$family" = ip6 ]; then boot="/ip6/$BOOT_ADDR6/tcp/$PORT/p2p/$boot_id"; else boot="/ip4/$BOOT_ADDR/tcp/$PORT/p2p/$boot_id"; fi
  # The bootstrap is dual-stack: it listens on both, whichever address the nodes are given.
  start_in boot "$out/boot.log" node "$cli" --identity "$work/boot.key" --control "$work/boot.sock" \
    --listen "/ip4/$BOOT_ADDR/tcp/$PORT" --listen "/ip6/$BOOT_ADDR6/tcp/$PORT"
  wait_for "$out/boot.log" '"event":"node.started"' || { setup_error="bootstrap did not start"; return 1; }

  start_in workhorse "$out/echo.log" node "$root/scripts/echo-server.mjs" "$ECHO_PORT"
  wait_for "$out/echo.log" 'listening' || { setup_error="echo server did not start"; return 1; }
  client_id=$(punchgate_id "$work/client.key")
  start_in workhorse "$out/workhorse.log" node "$cli" --identity "$work/workhorse.key" --control "$work/workhorse.sock" \
    "${listen[@]}" --bootstrap "$boot" --expose "echo=127.0.0.1:$ECHO_PORT" --allow "$client_id"
  wait_for "$out/workhorse.log" '"event":"service.published"' ||
    { setup_error="workhorse did not publish echo within ${START_TIMEOUT_S} s"; return 1; }
  # The lab is what it claims: the workhorse's listener is not reachable unsolicited over
  # IPv6 (its firewall) or IPv4 (its NAT), so a direct connection can only be a punch.
  "$lab" exec "$prefix" boot node "$root/scripts/ipv6-lab-closed.mjs" "$WORKHORSE_ADDR6" "$PORT" > "$out/closed.log" 2>&1 ||
    { setup_error="the workhorse's IPv6 listener is reachable unsolicited: $(tail -n 1 "$out/closed.log")"; return 1; }

  client_started=$(date +%s%3N)
  start_in client "$out/client.log" node "$cli" --identity "$work/client.key" --control "$work/client.sock" --log-level debug \
    "${listen[@]}" --bootstrap "$boot" --tunnel-by-name "echo@127.0.0.1:$TUNNEL_PORT"
  start_in client "$out/probe.json" node "$root/scripts/nat-lab-echo-probe.mjs" "$TUNNEL_PORT" "$client_started" "$bytes"
  wait "${pids[-1]}" || true
  local router
  for router in routerA routerB; do
    "$lab" exec "$prefix" "$router" conntrack -L -f ipv6 -p tcp > "$out/$router.conntrack" 2>/dev/null || rm -f "$out/$router.conntrack"
  done
}

# The direct connection's address and when the punch made it, from the client's log: the
# target is a direct path over IPv6 from the client's first punch round, not merely a direct
# one; behind SYN-dropping firewalls (FIREWALL nosyn), a UDP (udx) one.
check_ipv6() {
  node - "$1/client.log" "$2" "$client_started" "$3" <<'EOF'
const [file, workhorse, started, firewall] = process.argv.slice(2)
const events = require('node:fs').readFileSync(file, 'utf8').split('\n').flatMap(l => { try { return [JSON.parse(l)] } catch { return [] } })
const direct = events.find(e => e.event === 'peer.connected' && e.peer === workhorse && e.direct === true)
const punched = events.find(e => e.event === 'holepunch.succeeded')
const at = e => e?.time != null ? `${((Date.parse(e.time) - Number(started)) / 1000).toFixed(1)} s` : '-'
console.log(`direct connection ${direct?.addr ?? 'none'} at ${at(direct)}; punch ${punched != null ? `${punched.addr}, round ${punched.attempt}, ${punched.ms} ms` : 'none'}`)
const udp = firewall !== 'nosyn' || (punched?.addr.includes('/udx/') === true && direct?.addr.includes('/udx/') === true)
process.exitCode = direct?.addr.startsWith('/ip6/') === true && punched?.attempt === 1 && punched.addr.startsWith('/ip6/') && udp ? 0 : 1
EOF
}

known=$(awk 'NF && $1 !~ /^#/ { print $1 }' <<< "$SCENARIOS")
selected=${IPV6LAB_SCENARIOS:-$(paste -sd, <<< "$known")}
for name in ${selected//,/ }; do
  grep -qxF -- "$name" <<< "$known" || { echo "ipv6-lab: unknown scenario '$name' (known: $(paste -sd' ' <<< "$known"))" >&2; exit 2; }
done

mkdir -p "$results"
for name in $known; do rm -rf "${results:?}/$name"; done
rm -f "$results/results.json" "$results/results.md" "$results/scenarios.txt"

ipv6_failed=()
for name in ${selected//,/ }; do
  read -r _ family path limit firewall < <(awk -v n="$name" '$1 == n' <<< "$SCENARIOS")
  out="$results/$name"
  mkdir -p "$out"
  echo "ipv6-lab: $name (bootstrap over $family, both sides behind $firewall IPv6 firewalls and $IPV4_KIND IPv4 NATs, target $path over IPv6$( [ "$firewall" = nosyn ] && echo ' UDP') in punch round 1, first byte <= $limit s)"
  rm -f "$work"/*.key "$work"/*.known-providers
  workhorse_id=$(punchgate_id "$work/workhorse.key")
  setup_error=''
  client_started=0
  run_scenario "$out" "$family" "$firewall" || true
  measured_until=$(date +%s%3N)
  stop_processes
  lab_down
  write_scenario "$out" "$path" "$limit" "$workhorse_id" "$setup_error"
  echo "$name" >> "$results/scenarios.txt"
  check_ipv6 "$out" "$workhorse_id" "$firewall" | tee "$out/ipv6.txt" || ipv6_failed+=("$name")
done

echo
status=0
node "$root/scripts/nat-lab-report.mjs" "$results" || status=1
if [ "${#ipv6_failed[@]}" -gt 0 ]; then
  echo "ipv6-lab: no direct IPv6 connection from punch round 1 in: ${ipv6_failed[*]}" >&2
  status=1
fi
exit "$status"
