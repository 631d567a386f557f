#!/usr/bin/env bash
# NAT lab test (npm run test:lab; needs root): for each scenario, builds the lab
# (scripts/nat-lab.sh), runs a bootstrap, a workhorse exposing an echo server and a client
# tunnelling to it by name, each in its namespace; times the first echoed byte from the
# client's start, pushes NATLAB_BYTES through the tunnel byte-exact, reads the tunnel's
# path from the client log, and judges each scenario against its target
# (scripts/nat-lab-report.mjs). Exits 1 if any target is missed.
#
#   NATLAB_SCENARIOS  comma list of scenario names (default: all, see below)
#   NATLAB_BYTES      bytes echoed per scenario (default 104857600 = 100 MiB)
#   NATLAB_DELAY_MS, NATLAB_LOSS_PCT   impair the internet segment (nat-lab.sh --delay/--loss)
#   NATLAB_TCP_ONLY   1: every scenario's daemons run with --no-udp-punch (TCP punching only)
#   NATLAB_HOLD_DIRECT_S  after the probe, keep the daemons up to this many seconds (at least DIRECT_HOLD_S when the target is direct) until the client
#                     logs a direct connection (holepunch.succeeded), so a slow punch is still seen
#                     (default 0; scripts/nat-lab-hardnat-series.sh uses it)
#   NATLAB_PREFIX     namespace prefix (default pgl-<pid>-, so parallel runs never meet)
#   NATLAB_RESULTS    results directory (default test-results/nat-lab)
set -euo pipefail

# The bootstrap column: the address the client and the workhorse are given for the
# bootstrap, its TCP one or its QUIC one (it listens on both). The udp column: 'tcp' runs
# all three daemons with --no-udp-punch (TCP punching only); '-' and 'udp' run the default,
# UDP punching on ('udp' marks the scenarios that exist for it). The loss column: the share of IPv4
# frames the internet drops in this scenario (nat-lab.sh --loss), '-' for NATLAB_LOSS_PCT.
# name                 client     workhorse  target path  first byte limit (s)  bootstrap  udp  loss
readonly SCENARIOS='
fullcone-fullcone      fullcone   fullcone   direct       5                     tcp        -    -
cone-cone              cone       cone       direct       10                    tcp        -    -
public-cone            public     cone       direct       5                     tcp        -    -
symmetric-symmetric    symmetric  symmetric  relay        10                    tcp        -    -
cone-symmetric         cone       symmetric  any          10                    tcp        tcp  -
fullcone-symmetric     fullcone   symmetric  any          10                    tcp        -    -
symmetric-fullcone     symmetric  fullcone   direct       5                     tcp        -    -
public-public          public     public     direct       5                     tcp        -    -
quic-boot-cone-cone    cone       cone       direct       10                    quic       -    -
nosyn-nosyn            nosyn      nosyn      relay        15                    tcp        tcp  -
udp-nosyn-nosyn        nosyn      nosyn      direct       10                    quic       udp  -
fullcone-cone          fullcone   cone       direct       10                    tcp        -    -
cone-fullcone          cone       fullcone   direct       10                    tcp        -    -
symmetric-cone         symmetric  cone       any          10                    tcp        tcp  -
cgnat-cone             cgnat      cone       direct       10                    tcp        -    -
loss5-cone-cone        cone       cone       direct       15                    tcp        -    5
udp-cone-symmetric     cone       symmetric  direct       10                    tcp        udp  -
udp-symmetric-cone     symmetric  cone       direct       10                    tcp        udp  -
udp-cone-symseq        cone       symseq     direct       10                    tcp        udp  -
udp-symseq-cone        symseq     cone       direct       10                    tcp        udp  -
'
readonly BOOT_ADDR=11.0.0.2 BOOT_PORT=4001 ECHO_PORT=7000 TUNNEL_PORT=2222
# How long a scenario with a direct target waits, after the echo, for its punch to succeed.
readonly DIRECT_HOLD_S=10
# Setup steps that take longer than this are failures, not slow successes.
readonly START_TIMEOUT_S=30

root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$root/node_modules/.bin:$PATH"
lab="$root/scripts/nat-lab.sh"
cli="$root/packages/cli/bin/punchgate.js"
prefix=${NATLAB_PREFIX:-pgl-$$-}
results=${NATLAB_RESULTS:-$root/test-results/nat-lab}
bytes=${NATLAB_BYTES:-104857600}
# The scenario's impairments (nat-lab.sh up's options); set per scenario by impairments_for.
impair=()
impairments_for() {
  local loss=$1
  [ "$loss" = - ] && loss=${NATLAB_LOSS_PCT:-}
  impair=()
  if [ -n "${NATLAB_DELAY_MS:-}" ]; then impair+=(--delay "$NATLAB_DELAY_MS"); fi
  if [ -n "$loss" ]; then impair+=(--loss "$loss"); fi
}
[ "$(id -u)" -eq 0 ] || { echo "nat-lab-test: needs root (network namespaces): sudo npm run test:lab" >&2; exit 2; }
work=$(mktemp -d)
pids=()
# Set once this run's 'up' succeeded: a failed 'up' may mean the names belong to another run.
lab_up=0

# lab_cleanup, start_in, wait_for
source "$root/scripts/lab-processes.sh"
trap lab_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

punchgate_id() {
  node "$cli" id --identity "$1"
}

json_string() {
  node -e 'process.stdout.write(JSON.stringify(process.argv[1]))' -- "$1"
}

# Writes the scenario's target (and the setup error, if any) for the report.
write_scenario() {
  local out=$1 client=$2 workhorse=$3 path=$4 limit=$5 peer=$6 error=$7
  {
    printf '{"client":"%s","workhorse":"%s","expectPath":"%s","limitSeconds":%s,' "$client" "$workhorse" "$path" "$limit"
    printf '"workhorsePeer":"%s","clientStartedMs":%s,"measuredUntilMs":%s,"impairments":%s' \
      "$peer" "$client_started" "$measured_until" "$(json_string "${impair[*]:-none}")"
    [ -n "$error" ] && printf ',"error":%s' "$(json_string "$error")"
    printf '}\n'
  } > "$out/scenario.json"
}

# Brings up the lab and the daemons, runs the probe. When a setup step fails, returns
# non-zero with the reason in setup_error; the probe's own failures are in probe.json.
# Called directly, not in a subshell, so the pids it starts reach stop_processes.
setup_error=''
client_started=0
measured_until=0
run_scenario() {
  local out=$1 client=$2 workhorse=$3 boot_via=$4 udp=$5 target=$6
  # A scenario whose target is direct holds its daemons until the punch has succeeded, up to
  # DIRECT_HOLD_S: the 100 MiB can finish on the relay while a birthday round (0.1-3.9 s, up to
  # 4.6 s to direct from the client's start in 40 series runs) is still going; a CI run failed so.
  local hold=${NATLAB_HOLD_DIRECT_S:-0}
  if [ "$target" = direct ] && [ "$hold" -lt "$DIRECT_HOLD_S" ]; then hold=$DIRECT_HOLD_S; fi
  local boot_id boot client_id flags=()
  if [ "$udp" = tcp ] || [ "${NATLAB_TCP_ONLY:-}" = 1 ]; then flags+=(--no-udp-punch); fi

  "$lab" up "$prefix" "$client" "$workhorse" "${impair[@]}" > "$out/lab.log" 2>&1 ||
    { setup_error="lab up failed: $(tail -n 1 "$out/lab.log")"; return 1; }
  lab_up=1

  boot_id=$(punchgate_id "$work/boot.key")
  boot="/ip4/$BOOT_ADDR/tcp/$BOOT_PORT/p2p/$boot_id"
  if [ "$boot_via" = quic ]; then boot="/ip4/$BOOT_ADDR/udp/$BOOT_PORT/quic-v1/p2p/$boot_id"; fi
  start_in boot "$out/boot.log" node "$cli" --identity "$work/boot.key" --control "$work/boot.sock" \
    --listen "/ip4/$BOOT_ADDR/tcp/$BOOT_PORT" --listen "/ip4/$BOOT_ADDR/udp/$BOOT_PORT/quic-v1" "${flags[@]}"
  wait_for "$out/boot.log" '"event":"node.started"' || { setup_error="bootstrap did not start"; return 1; }

  start_in workhorse "$out/echo.log" node "$root/scripts/echo-server.mjs" "$ECHO_PORT"
  wait_for "$out/echo.log" 'listening' || { setup_error="echo server did not start"; return 1; }
  # Only the client may use the echo service: services refuse every peer unless a list names it.
  client_id=$(punchgate_id "$work/client.key")
  start_in workhorse "$out/workhorse.log" node "$cli" --identity "$work/workhorse.key" --control "$work/workhorse.sock" \
    --bootstrap "$boot" --expose "echo=127.0.0.1:$ECHO_PORT" --allow "$client_id" "${flags[@]}"
  wait_for "$out/workhorse.log" '"event":"service.published"' ||
    { setup_error="workhorse did not publish echo within ${START_TIMEOUT_S} s"; return 1; }

  # The clock starts as the client is launched; the probe connects right after.
  client_started=$(date +%s%3N)
  start_in client "$out/client.log" node "$cli" --identity "$work/client.key" --control "$work/client.sock" --log-level debug \
    --bootstrap "$boot" --tunnel-by-name "echo@127.0.0.1:$TUNNEL_PORT" "${flags[@]}"
  start_in client "$out/probe.json" node "$root/scripts/nat-lab-echo-probe.mjs" "$TUNNEL_PORT" "$client_started" "$bytes"
  # 'wait', unlike a foreground command, lets SIGINT/SIGTERM reach the cleanup trap at once.
  wait "${pids[-1]}" || true
  if [ "$hold" -gt 0 ]; then
    timeout "$hold" grep -m1 -q '"event":"holepunch.succeeded"' <(tail -n +1 -F "$out/client.log" 2>/dev/null) &
    wait "$!" || true
  fi
  save_nat_tables "$out"
}

# The routers' connection tracking tables, to see what a failed punch did on the wire.
save_nat_tables() {
  local router
  for router in routerA routerB carrierA carrierB; do
    "$lab" exec "$prefix" "$router" conntrack -L -p tcp > "$1/$router.conntrack" 2>/dev/null || rm -f "$1/$router.conntrack"
    "$lab" exec "$prefix" "$router" conntrack -L -p udp > "$1/$router.udp.conntrack" 2>/dev/null || rm -f "$1/$router.udp.conntrack"
  done
}

known=$(awk 'NF { print $1 }' <<< "$SCENARIOS")
selected=${NATLAB_SCENARIOS:-$(paste -sd, <<< "$known")}
for name in ${selected//,/ }; do
  grep -qxF -- "$name" <<< "$known" ||
    { echo "nat-lab-test: unknown scenario '$name' (known: $(paste -sd' ' <<< "$known"))" >&2; exit 2; }
done

# Only what this script writes is replaced, whatever NATLAB_RESULTS points at.
mkdir -p "$results"
for name in $known; do rm -rf "${results:?}/$name"; done
rm -f "$results/results.json" "$results/results.md" "$results/scenarios.txt"

for name in ${selected//,/ }; do
  read -r _ client workhorse path limit boot_via udp loss < <(awk -v n="$name" '$1 == n' <<< "$SCENARIOS")
  impairments_for "$loss"
  out="$results/$name"
  mkdir -p "$out"
  echo "nat-lab-test: $name (client $client, workhorse $workhorse, bootstrap over $boot_via$( [ "$udp" = tcp ] && echo ', --no-udp-punch')${impair[*]:+, ${impair[*]}}, target $path, first byte <= $limit s)"
  # A fresh deployment: new keys, and the client trusts on first use again (its known-providers
  # file, beside its key, would pin the previous scenario's workhorse).
  rm -f "$work"/*.key "$work"/*.known-providers
  workhorse_id=$(punchgate_id "$work/workhorse.key")
  setup_error=''
  client_started=0
  run_scenario "$out" "$client" "$workhorse" "$boot_via" "$udp" "$path" || true
  # Events after this are the daemons shutting down, not the scenario's outcome.
  measured_until=$(date +%s%3N)
  stop_processes
  lab_down
  write_scenario "$out" "$client" "$workhorse" "$path" "$limit" "$workhorse_id" "$setup_error"
  echo "$name" >> "$results/scenarios.txt"
done

echo
node "$root/scripts/nat-lab-report.mjs" "$results"
