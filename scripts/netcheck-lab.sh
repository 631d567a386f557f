#!/usr/bin/env bash
# `punchgate netcheck` in the NAT lab (issue 22): for every router kind of scripts/nat-lab.sh,
# netcheck run on the host behind it must say what the router is. The lab's bootstrap
# (11.0.0.2) listens on two TCP and two QUIC ports, so one public node is two observers per transport.
#   fullcone  -> TCP and UDP mapping endpoint-independent; the reach probe gets in, but only
#                through the NAT: role private (reachability/decide.ts)
#   cone      -> endpoint-independent; the probe does not get in; role private
#   symmetric -> endpoint-dependent; the probe does not get in; role private; no TCP hole punch
#   public    -> no NAT (observed = the host's own address); the probe gets in; role public
# Two labs cover the four kinds (client and workhorse sides). Needs root.
# Logs and the reports: test-results/netcheck-lab/.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$root/node_modules/.bin:$PATH"
lab="$root/scripts/nat-lab.sh"
cli="$root/packages/cli/bin/punchgate.js"
prefix="pgn$$-"
logs=${NETCHECK_LAB_LOG_DIR:-$root/test-results/netcheck-lab}
work=$(mktemp -d)
readonly START_TIMEOUT_S=30 BOOT_IP=11.0.0.2
mkdir -p "$logs"; rm -f "$logs"/*.log "$logs"/*.json
pids=()
lab_up=0

# lab_cleanup, start_in, stop_processes, wait_for
source "$root/scripts/lab-processes.sh"
on_failure="netcheck-lab: FAILED; logs in $logs"
trap lab_cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "netcheck-lab: $*" >&2; exit 1; }

boot_id=$(node "$cli" id --identity "$work/boot.key")
bootstrap="/ip4/$BOOT_IP/tcp/4001/p2p/$boot_id"

# Runs netcheck on HOST (client or workhorse), which sits behind a router of KIND, and checks its answers.
check() {
  local host=$1 kind=$2 report="$logs/$2.json" rc=0
  bash "$lab" exec "$prefix" "$host" node "$cli" netcheck --json --bootstrap "$bootstrap" > "$report" 2> "$logs/$kind-netcheck.log" || rc=$?
  [ "$rc" -eq 0 ] || fail "$kind: netcheck exited $rc: $(tail -n 1 "$logs/$kind-netcheck.log")"
  local expect_map expect_role expect_open
  case "$kind" in
    fullcone) expect_map=endpoint-independent expect_role=private expect_open=true ;;
    cone) expect_map=endpoint-independent expect_role=private expect_open=false ;;
    symmetric) expect_map=endpoint-dependent expect_role=private expect_open=false ;;
    public) expect_map=none expect_role=public expect_open=true ;;
  esac
  node -e '
    const [file, kind, map, role, open] = process.argv.slice(1)
    const r = JSON.parse(require("node:fs").readFileSync(file, "utf8"))
    const problems = []
    const tcp = r.observations.filter(o => o.transport === "tcp" && o.mapped != null)
    if (tcp.length < 2) problems.push(`${tcp.length} TCP observations, want 2`)
    if (r.tcp.mapping !== map) problems.push(`TCP mapping ${r.tcp.mapping}, want ${map} (${r.tcp.mapped.join(", ")})`)
    if (r.quic.mapping !== map) problems.push(`UDP mapping ${r.quic.mapping}, want ${map} (${r.quic.reason})`)
    if (String(r.reach.open) !== open) problems.push(`reach probe open=${r.reach.open}, want ${open} (${r.reach.reason})`)
    if (r.role.role !== role) problems.push(`role ${r.role.role}, want ${role} (${r.role.reason})`)
    const punch = r.punch.find(p => p.method === "tcp-punch").works
    if (punch !== (map !== "endpoint-dependent")) problems.push(`tcp-punch works=${punch}`)
    if (problems.length > 0) { console.error(`${kind}: ${problems.join("; ")}`); process.exit(1) }
    console.log(`netcheck-lab: ${kind}: TCP ${r.tcp.mapping} (${r.tcp.mapped.join(", ")}), UDP ${r.quic.mapping}, reach probe ${r.reach.open ? "in" : "not in"}, role ${r.role.role}`)
  ' "$report" "$kind" "$expect_map" "$expect_role" "$expect_open" || fail "$kind: wrong answer; report in $report"
}

# One lab: the client side behind CLIENT_KIND, the workhorse side behind WORKHORSE_KIND.
run_lab() {
  local client_kind=$1 workhorse_kind=$2
  bash "$lab" up "$prefix" "$client_kind" "$workhorse_kind" > "$logs/lab.log" 2>&1 || fail "lab up failed: $(tail -n 1 "$logs/lab.log")"
  lab_up=1
  start_in boot "$logs/boot-$client_kind-$workhorse_kind.log" node "$cli" --identity "$work/boot.key" --control "$work/boot.sock" \
    --listen "/ip4/$BOOT_IP/tcp/4001" --listen "/ip4/$BOOT_IP/tcp/4003" --listen "/ip4/$BOOT_IP/udp/4001/quic-v1" --listen "/ip4/$BOOT_IP/udp/4003/quic-v1"
  wait_for "$logs/boot-$client_kind-$workhorse_kind.log" '"event":"phase.changed"' || fail "the bootstrap did not start"
  check client "$client_kind"
  check workhorse "$workhorse_kind"
  stop_processes
  lab_down
}

run_lab fullcone cone
run_lab symmetric public
echo "netcheck-lab: ok"
