#!/usr/bin/env bash
# Roles from reachability in the NAT lab (issue 22): a second public host (boot2, 11.0.0.3)
# started with --bootstrap to the first (boot, 11.0.0.2) must become public (a relay) within
# ROLE_LIMIT_S: its `role.changed` event and `punchgate status` say so, and private nodes
# then hold a relay slot on it. Nodes behind each router kind (full cone, port-restricted
# cone, symmetric) must stay private, each for the reason its router gives, and hold a
# relay slot on a second public node; a host on the internet without a router ("public"
# kind) started with --bootstrap becomes public too.
# Two labs: fullcone/cone, then symmetric/public. Needs root; ~30 s.
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
[ "$(id -u)" -eq 0 ] || { say "needs root (network namespaces)" >&2; exit 2; }

# lab_cleanup, start_in, wait_for, stop_processes, lab_down
source "$root/scripts/lab-processes.sh"
on_failure="roles-lab: FAILED; logs in $logs"
trap lab_cleanup EXIT
trap 'exit 130' INT TERM

fail() { say "$*" >&2; exit 1; }
now_ms() { date +%s%3N; }
started_ms=$(now_ms)
# A line with the seconds since the run began.
say() { printf 'roles-lab: [%5.1f s] %s\n' "$(( $(now_ms) - started_ms ))e-3" "$*"; }

# Waits (at most START_TIMEOUT_S) until NAME's status makes the JS expression EXPR over `d`
# true; prints PRINT (an expression over `d`) of the last status either way.
wait_status() {
  node "$root/scripts/lab-status.mjs" "$work/$1.sock" "$2" "$START_TIMEOUT_S" "${3:-JSON.stringify(d)}"
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
  local why
  why=$(wait_status "$name" "d.role === 'private' && /$reason/.test(d.roleReason ?? '')" 'd.role + " (" + d.roleReason + ")"') ||
    fail "$name ($kind) did not report a private role for '$reason': $why"
  # Private nodes reserve on a public node besides boot too, which boot vouches for: boot2
  # (or, in the second lab, the workhorse on the internet, public as well).
  local second
  second=$(wait_status "$name" "(d.relay?.relays ?? []).some(r => r.peer !== '$boot_id' && r.status === 'reserved')" \
    "(d.relay.relays.find(r => r.peer !== '$boot_id' && r.status === 'reserved').peer === '$boot2_id' ? 'boot2' : 'the other public node')") ||
    fail "$name ($kind) holds no relay slot on a second public node: $(wait_status "$name" true 'JSON.stringify(d.relay)')"
  ! grep -q '"event":"role.changed"' "$logs/$name.log" || fail "$name ($kind) changed role: $(grep '"event":"role.changed"' "$logs/$name.log")"
  say "$name behind $kind: $why; holds a relay slot on a second public node, $second"
}

# One lab: boot, boot2 with --bootstrap boot, and a node on each side with --bootstrap boot.
run_lab() {
  local client_kind=$1 workhorse_kind=$2
  bash "$lab" up "$prefix" "$client_kind" "$workhorse_kind" > "$logs/lab-$client_kind-$workhorse_kind.log" 2>&1 ||
    fail "lab up failed: $(tail -n 1 "$logs/lab-$client_kind-$workhorse_kind.log")"
  lab_up=1
  local t0 ms

  start_node boot boot --listen "/ip4/$BOOT_IP/tcp/4001"
  wait_for "$logs/boot.log" '"event":"phase.changed"' || fail "the first public node did not start"
  t0=$(now_ms)
  start_node boot2 boot2 --listen /ip4/0.0.0.0/tcp/4001 --bootstrap "$boot"
  timeout "$ROLE_LIMIT_S" grep -m1 -q '"event":"role.changed".*"to":"public"' <(tail -n +1 -F "$logs/boot2.log") ||
    fail "boot2 did not become public within $ROLE_LIMIT_S s: $(grep -m1 '"event":"role.changed"' "$logs/boot2.log" || echo 'no role.changed')"
  ms=$(( $(now_ms) - t0 ))
  # What `punchgate status` shows (the CLI, once: it is what a user runs).
  node "$cli" status --control "$work/boot2.sock" > "$logs/boot2-status-$client_kind-$workhorse_kind.txt"
  grep -Eq '^role: +public \(bootstrap .* reached 11\.0\.0\.3:4001\)' "$logs/boot2-status-$client_kind-$workhorse_kind.txt" ||
    fail "punchgate status of boot2: $(grep '^role' "$logs/boot2-status-$client_kind-$workhorse_kind.txt")"
  say "boot2 public $ms ms after its start; status: $(grep -E '^(role|relay):' "$logs/boot2-status-$client_kind-$workhorse_kind.txt" | tr -s ' ' | paste -sd';')"

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
        say "$name on the internet: $(wait_status "$name-$kind" "d.role === 'public'" 'd.role + " (" + d.roleReason + ")"')" ;;
    esac
  done
  stop_processes
  lab_down
  say "lab $client_kind/$workhorse_kind down"
}

boot="/ip4/$BOOT_IP/tcp/4001/p2p/$(node "$cli" id --identity "$work/boot.key")"
boot_id=${boot##*/}
boot2_id=$(node "$cli" id --identity "$work/boot2.key")
run_lab fullcone cone
run_lab symmetric public
say "ok"
