#!/usr/bin/env bash
# Roles from reachability in the NAT lab (issue 22): a second public host (boot2, 11.0.0.3)
# started with --bootstrap to the first (boot, 11.0.0.2) must become public (a relay) within
# ROLE_LIMIT_S: its `role.changed` event and `punchgate status` say so, and private nodes
# then hold a relay slot on it. Nodes behind each router kind (full cone, port-restricted
# cone, symmetric) must stay private, each for the reason its router gives; a host on the
# internet without a router ("public" kind) started with --bootstrap becomes public too.
# Two labs: fullcone/cone, then symmetric/public. Needs root; ~40 s.
# Logs: test-results/roles-lab/.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$root/node_modules/.bin:$PATH"
lab="$root/scripts/nat-lab.sh"
cli="$root/packages/cli/bin/punchgate.js"
prefix="pgr$$-"
logs=${ROLES_LAB_LOG_DIR:-$root/test-results/roles-lab}
work=$(mktemp -d)
readonly ROLE_LIMIT_S=${ROLE_LIMIT_S:-30} START_TIMEOUT_S=30
readonly BOOT_IP=11.0.0.2 BOOT2_IP=11.0.0.3
mkdir -p "$logs"; rm -f "$logs"/*.log "$logs"/*.json
pids=()
lab_up=0
[ "$(id -u)" -eq 0 ] || { echo "roles-lab: needs root (network namespaces)" >&2; exit 2; }

# lab_cleanup, start_in, wait_for, stop_processes, lab_down
source "$root/scripts/lab-processes.sh"
on_failure="roles-lab: FAILED; logs in $logs"
trap lab_cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "roles-lab: $*" >&2; exit 1; }
now_ms() { date +%s%3N; }

# NAME's status as JSON (the control socket is a file: reachable from the host namespace).
status_json() {
  node "$cli" status --control "$work/$1.sock" --json
}

# Prints FIELD (a JS expression over `d`, the daemon status) of NAME's status.
status_field() {
  status_json "$1" | node -e 'let s = ""; process.stdin.on("data", c => { s += c }).on("end", () => {
    const d = JSON.parse(s).daemon ?? {}; console.log(eval(process.argv[1])) })' "$2"
}

# Waits (at most START_TIMEOUT_S) until NAME's status makes the JS expression EXPR over `d` true.
wait_status() {
  local name=$1 expr=$2 deadline=$(( $(date +%s) + START_TIMEOUT_S ))
  until [ "$(status_field "$name" "Boolean($expr)" 2>/dev/null)" = true ]; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

# Starts NAME in lab host HOST with the given daemon options.
start_node() {
  local host=$1 name=$2
  shift 2
  start_in "$host" "$logs/$name.log" node "$cli" --identity "$work/$name.key" --control "$work/$name.sock" "$@"
}

# A node behind a router (or on the internet, KIND public) that must stay private, for REASON (a regex).
expect_private() {
  local name=$1 kind=$2 reason=$3 boot2_id=$4
  wait_status "$name" "d.role === 'private' && /$reason/.test(d.roleReason ?? '')" ||
    fail "$name ($kind) did not report a private role for '$reason': $(status_field "$name" 'd.role + " (" + d.roleReason + ")"')"
  # Private nodes reserve on the second public node too (the first vouches for it).
  wait_status "$name" "(d.relay?.relays ?? []).some(r => r.peer === '$boot2_id' && r.status === 'reserved')" ||
    fail "$name ($kind) holds no relay slot on the second public node: $(status_field "$name" 'JSON.stringify(d.relay)')"
  ! grep -q '"event":"role.changed"' "$logs/$name.log" || fail "$name ($kind) changed role: $(grep '"event":"role.changed"' "$logs/$name.log")"
  echo "roles-lab: $name behind $kind: private ($(status_field "$name" 'd.roleReason')), holds a relay slot on boot2"
}

# One lab: boot, boot2 with --bootstrap boot, and a node on each side with --bootstrap boot.
run_lab() {
  local client_kind=$1 workhorse_kind=$2
  bash "$lab" up "$prefix" "$client_kind" "$workhorse_kind" > "$logs/lab-$client_kind-$workhorse_kind.log" 2>&1 ||
    fail "lab up failed: $(tail -n 1 "$logs/lab-$client_kind-$workhorse_kind.log")"
  lab_up=1
  rm -f "$work"/*.key
  local boot boot2_id t0 ms
  boot="/ip4/$BOOT_IP/tcp/4001/p2p/$(node "$cli" id --identity "$work/boot.key")"
  boot2_id=$(node "$cli" id --identity "$work/boot2.key")

  start_node boot boot --listen "/ip4/$BOOT_IP/tcp/4001"
  wait_for "$logs/boot.log" '"event":"phase.changed"' || fail "the first public node did not start"
  t0=$(now_ms)
  start_node boot2 boot2 --listen /ip4/0.0.0.0/tcp/4001 --bootstrap "$boot"
  timeout "$ROLE_LIMIT_S" grep -m1 -q '"event":"role.changed".*"to":"public"' <(tail -n +1 -F "$logs/boot2.log") ||
    fail "boot2 did not become public within $ROLE_LIMIT_S s: $(grep -m1 '"event":"role.changed"' "$logs/boot2.log" || echo 'no role.changed')"
  ms=$(( $(now_ms) - t0 ))
  wait_status boot2 "d.role === 'public' && /reached 11\\.0\\.0\\.3:4001/.test(d.roleReason)" ||
    fail "punchgate status of boot2: $(status_field boot2 'd.role + " (" + d.roleReason + ")"')"
  status_json boot2 > "$logs/boot2-status-$client_kind-$workhorse_kind.json"
  echo "roles-lab: boot2 public $ms ms after its start ($(status_field boot2 'd.roleReason')); splicing on $(status_field boot2 'd.splice?.addr')"

  local kind name
  for name in client workhorse; do
    [ "$name" = client ] && kind=$client_kind || kind=$workhorse_kind
    start_node "$name" "$name-$kind" --bootstrap "$boot"
  done
  for name in client workhorse; do
    [ "$name" = client ] && kind=$client_kind || kind=$workhorse_kind
    case "$kind" in
      fullcone) expect_private "$name-$kind" "$kind" 'through a NAT' "$boot2_id" ;;
      cone|symmetric) expect_private "$name-$kind" "$kind" 'could not connect' "$boot2_id" ;;
      public)
        timeout "$ROLE_LIMIT_S" grep -m1 -q '"event":"role.changed".*"to":"public"' <(tail -n +1 -F "$logs/$name-$kind.log") ||
          fail "$name on the internet (no router) did not become public"
        echo "roles-lab: $name on the internet: public ($(status_field "$name-$kind" 'd.roleReason'))" ;;
    esac
  done
  stop_processes
  lab_down
}

run_lab fullcone cone
run_lab symmetric public
echo "roles-lab: ok"
