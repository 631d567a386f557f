#!/usr/bin/env bash
# DCUtR with a standard peer in the NAT lab (issue 19, item 5): a plain js-libp2p node
# (scripts/dcutr-plain-peer.mjs: @libp2p/tcp, circuit relay, identify, @libp2p/dcutr) in the
# lab's client host dials a Punchgate daemon in the workhorse host through the bootstrap's
# relay. The daemon starts DCUtR (the inbound side starts, as the spec says) and the two must
# end up with a direct connection within LIMIT_S. In the `pg-dials` scenario the other way
# round: the plain node holds a slot on the relay, the daemon reaches it through the relay
# (`punchgate connect PLAIN:echo`, which then fails: the plain node serves no tunnel), and
# the plain node's @libp2p/dcutr starts the round.
#
# Scenarios (DCUTR_LAB_SCENARIOS, comma list; CI runs the default two):
#   plain-public/pg-cone     plain node on the internet, announcing its address; daemon behind
#                            a port-restricted cone. The daemon's plain client dial (the spec's
#                            unilateral upgrade) reaches the plain node's listener.
#   plain-cone/pg-fullcone   plain node behind a cone, announcing nothing; daemon behind a full
#                            cone. The plain node's dial reaches the daemon's listener through
#                            the mapping the daemon sent it.
#   pg-dials/plain-cone/pg-fullcone  as the second, but the daemon dials and the plain node starts
#                            (with the plain node on the internet the daemon dials it directly:
#                            nothing to punch).
#   plain-cone/pg-cone       not in CI: expected to stay relayed, for the plain node's reasons
#                            (it dials from ephemeral ports and knows no mapping of its own:
#                            docs/nat-traversal.md "DCUtR on the wire, and standard peers").
# Needs root; 87-101 s for the default three at load 9-14 on 2 cores. Logs: test-results/dcutr-lab/.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$root/node_modules/.bin:$PATH"
lab="$root/scripts/nat-lab.sh"
cli="$root/packages/cli/bin/punchgate.js"
prefix="pgd$$-"
logs=${DCUTR_LAB_LOG_DIR:-$root/test-results/dcutr-lab}
work=$(mktemp -d)
readonly LIMIT_S=${DCUTR_LAB_LIMIT_S:-30} START_TIMEOUT_S=30
readonly BOOT_IP=11.0.0.2 PLAIN_PUBLIC_IP=11.0.0.21 PLAIN_PORT=4002
scenarios=${DCUTR_LAB_SCENARIOS:-plain-public/pg-cone,plain-cone/pg-fullcone,pg-dials/plain-cone/pg-fullcone}
pg_log=''
mkdir -p "$logs"; rm -f "$logs"/*.log
pids=()
lab_up=0
[ "$(id -u)" -eq 0 ] || { echo "dcutr-lab: needs root (network namespaces)" >&2; exit 2; }

# lab_cleanup, start_in, wait_for, stop_processes, lab_down
source "$root/scripts/lab-processes.sh"
on_failure="dcutr-lab: FAILED; logs in $logs"
trap lab_cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }
started_ms=$(now_ms)
say() { printf 'dcutr-lab: [%5.1f s] %s\n' "$(( $(now_ms) - started_ms ))e-3" "$*"; }
fail() { say "$*" >&2; exit 1; }

boot_id=$(node "$cli" id --identity "$work/boot.key")
pg_id=$(node "$cli" id --identity "$work/pg.key")
boot="/ip4/$BOOT_IP/tcp/4001/p2p/$boot_id"

# The lab for PLAIN_KIND/PG_KIND with the bootstrap and the daemon running: the current one
# when its kinds match (scenarios on one lab share it), else a new one.
current_lab=''
lab_for() {
  local plain_kind=$1 pg_kind=$2 name="lab-$1-$2"
  [ "$current_lab" = "$name" ] && return
  stop_processes
  lab_down
  bash "$lab" up "$prefix" "$plain_kind" "$pg_kind" > "$logs/$name.log" 2>&1 || fail "lab up failed: $(tail -n 1 "$logs/$name.log")"
  lab_up=1
  current_lab=$name
  start_in boot "$logs/$name-boot.log" node "$cli" --identity "$work/boot.key" --control "$work/boot.sock" --listen "/ip4/$BOOT_IP/tcp/4001"
  wait_for "$logs/$name-boot.log" '"event":"node.started"' || fail "$name: bootstrap did not start"
  pg_log="$logs/$name-pg.log"
  start_in workhorse "$pg_log" node "$cli" --identity "$work/pg.key" --control "$work/pg.sock" --log-level debug \
    --bootstrap "$boot" --expose echo=127.0.0.1:7 --allow-any
  wait_for "$pg_log" '"event":"relay.reserved"' || fail "$name: the daemon holds no relay slot"
}

json() { node -e "process.stdin.on('data', d => { const e = JSON.parse(d); console.log($1) })"; }

# One scenario: PLAIN_KIND for the plain node's side, PG_KIND for the daemon's, EXPECT direct
# or relay, WHO dials through the relay: plain (the daemon starts DCUtR) or pg (the plain node does).
run_scenario() {
  local plain_kind=$1 pg_kind=$2 expect=$3 who=${4:-plain} name="plain-$1-pg-$2"
  local role=initiator
  [ "$who" = pg ] && { name="pg-dials-$name"; role=responder; }
  lab_for "$plain_kind" "$pg_kind"

  local announce=() plain_log="$logs/$name-plain.log" t0 plain_pid plain_id line ms
  [ "$plain_kind" = public ] && announce=(--announce "/ip4/$PLAIN_PUBLIC_IP/tcp/$PLAIN_PORT")
  t0=$(now_ms)
  if [ "$who" = plain ]; then
    start_in client "$plain_log" node "$root/scripts/dcutr-plain-peer.mjs" --listen "$PLAIN_PORT" "${announce[@]}" \
      --dial "$boot/p2p-circuit/p2p/$pg_id"
    plain_pid=${pids[-1]}
  else
    start_in client "$plain_log" node "$root/scripts/dcutr-plain-peer.mjs" --listen "$PLAIN_PORT" "${announce[@]}" --relay "$boot"
    plain_pid=${pids[-1]}
    wait_for "$plain_log" '"event":"reserved"' || fail "$name: the plain node holds no relay slot"
  fi
  wait_for "$plain_log" '"event":"started"' || fail "$name: the plain node did not start"
  plain_id=$(grep -m1 '"event":"started"' "$plain_log" | json e.peerId)
  # Reaches the plain node through the relay (the daemon's relays), then fails: no tunnel protocol there.
  [ "$who" = pg ] && start_in workhorse "$logs/$name-connect.log" node "$cli" connect "$plain_id:echo" --control "$work/pg.sock"
  line=$(timeout "$LIMIT_S" grep -m1 -E "\"event\":\"connection\",\"peer\":\"$pg_id\".*\"direct\":true" <(tail -n +1 -F "$plain_log" 2>/dev/null)) || line=''
  ms=$(( $(now_ms) - t0 ))
  local round
  round=$(grep -E "\"event\":\"holepunch.(succeeded|failed)\",\"peer\":\"$plain_id\"" "$pg_log" | head -n 1 |
    json '`${e.event} round ${e.attempt}, ${e.ms} ms, ${e.addr?.split("/p2p/")[0] ?? e.error}`' || true)
  [ -n "$round" ] || round='no round ended'
  if [ "$expect" = direct ]; then
    [ -n "$line" ] || fail "$name: no direct connection within $LIMIT_S s (daemon: $round)"
    grep -q "\"event\":\"holepunch.started\",\"peer\":\"$plain_id\".*\"role\":\"$role\"" "$pg_log" || fail "$name: the daemon was not the round's $role"
    # From the relayed connection opening to the direct one, on the plain node's clock.
    local relayed_t
    relayed_t=$(grep -m1 -E "\"event\":\"connection\",\"peer\":\"$pg_id\".*\"direct\":false" "$plain_log" | json e.t)
    say "$name: direct $(( $(echo "$line" | json e.t) - relayed_t )) ms after the relayed connection opened, $ms ms after the plain node's launch ($(echo "$line" | json 'e.direction + " " + e.addr.split("/p2p/")[0]')); daemon $role: $round"
  else
    [ -z "$line" ] || fail "$name: expected to stay relayed, went direct: $line"
    say "$name: stayed relayed for $LIMIT_S s, as expected; daemon $role: $round"
  fi
  kill "$plain_pid" 2>/dev/null || true
  wait "$plain_pid" 2>/dev/null || true
}

IFS=',' read -r -a list <<< "$scenarios"
for scenario in "${list[@]}"; do
  case "$scenario" in
    plain-public/pg-cone) run_scenario public cone direct ;;
    plain-cone/pg-fullcone) run_scenario cone fullcone direct ;;
    pg-dials/plain-cone/pg-fullcone) run_scenario cone fullcone direct pg ;;
    plain-cone/pg-cone) run_scenario cone cone relay ;;
    *) fail "unknown scenario $scenario" ;;
  esac
done
stop_processes
lab_down
say ok
