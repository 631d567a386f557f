#!/usr/bin/env bash
# Port mapping lab (npm run test:portmap-lab; needs root): two hosts behind symmetric NATs
# (scripts/nat-lab.sh), whose routers also run Debian's miniupnpd: routerA (the client's)
# answers NAT-PMP (and PCP, which miniupnpd serves with it), routerB (the workhorse's)
# UPnP-IGD only. Two runs:
#   mapping   both daemons map their listen ports (the default: TCP, and QUIC's UDP port);
#             the tunnel must go direct (symmetric/symmetric stays relayed without it),
#             and on stop every mapping is deleted from the routers. Then PCP on its own
#             (scripts/portmap-lab-pcp.ts) maps and deletes a port on routerA. Before the
#             daemons start, `punchgate netcheck` on each host must name its router's protocols.
#   off       the same with --no-port-mapping: no router is asked, the tunnel stays relayed.
# Skips (exit 0, one line saying so) only when miniupnpd cannot be installed or run here.
#
#   PORTMAP_LAB_BYTES    bytes echoed through the tunnel per run (default 1048576)
#   PORTMAP_LAB_RESULTS  results directory (default test-results/portmap-lab)
set -euo pipefail

readonly BOOT_ADDR=11.0.0.2 BOOT_PORT=4001 ECHO_PORT=7000 TUNNEL_PORT=2222
readonly MINIUPNPD=/usr/sbin/miniupnpd
readonly START_TIMEOUT_S=30
# A symmetric pair reached the relay in ~7 s in the NAT lab; a direct path needs no punch luck.
readonly FIRST_BYTE_LIMIT_S=10

root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$root/node_modules/.bin:$PATH"
lab="$root/scripts/nat-lab.sh"
cli="$root/packages/cli/bin/punchgate.js"
prefix=pgm-$$-
results=${PORTMAP_LAB_RESULTS:-$root/test-results/portmap-lab}
bytes=${PORTMAP_LAB_BYTES:-1048576}
[ "$(id -u)" -eq 0 ] || { echo "portmap-lab: needs root (network namespaces): sudo npm run test:portmap-lab" >&2; exit 2; }
work=$(mktemp -d)
pids=()
lab_up=0

# lab_cleanup, start_in, wait_for, stop_processes, lab_down
source "$root/scripts/lab-processes.sh"
trap lab_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ ! -x "$MINIUPNPD" ]; then
  echo "portmap-lab: installing miniupnpd-nftables" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq miniupnpd-nftables >/dev/null 2>&1 ||
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq miniupnpd-nftables >/dev/null 2>&1; } || true
fi
if [ ! -x "$MINIUPNPD" ] || ! "$MINIUPNPD" --version 2>&1 | grep -q nftables; then
  echo "portmap-lab: SKIPPED: Debian's miniupnpd (nftables build) cannot be installed or run here"
  exit 0
fi

# miniupnpd on ROUTER (routerA/routerB) serving LAN_NET: METHOD nat-pmp or upnp-igd.
start_miniupnpd() {
  local router=$1 lan_net=$2 method=$3 out=$4
  local conf="$work/$router.conf" ns="$prefix$router"
  {
    echo 'ext_ifname=wan'
    echo 'listening_ip=lan'
    echo 'http_port=0'
    if [ "$method" = nat-pmp ]; then echo 'enable_natpmp=yes'; echo 'enable_upnp=no'; else echo 'enable_natpmp=no'; echo 'enable_upnp=yes'; fi
    # A LAN host may map only its own address, to ports above 1023: a home router's defaults.
    echo 'secure_mode=yes'
    echo "uuid=$(cat /proc/sys/kernel/random/uuid)"
    echo 'upnp_table_name=miniupnpd'
    echo 'upnp_nat_table_name=miniupnpd'
    echo "allow 1024-65535 $lan_net 1024-65535"
    echo 'deny 0-65535 0.0.0.0/0 0-65535'
  } > "$conf"
  # The chains miniupnpd fills (its nftables build expects them), and the lab router's own
  # forward chain lets in what miniupnpd's DNAT rules forward; everything else unsolicited
  # from the WAN is still dropped.
  ip netns exec "$ns" nft -f - <<'EOF'
table inet miniupnpd {
  chain miniupnpd {
  }
  chain prerouting_miniupnpd {
  }
  chain postrouting_miniupnpd {
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    jump miniupnpd
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority srcnat - 10; policy accept;
    jump postrouting_miniupnpd
  }
}
EOF
  ip netns exec "$ns" nft insert rule ip natlab forward iifname wan ct status dnat accept
  start_in "$router" "$out/miniupnpd-$router.log" "$MINIUPNPD" -f "$conf" -d -P "$work/$router.pid"
  wait_for "$out/miniupnpd-$router.log" 'HTTP listening|Listening for NAT-PMP'
}

# The DNAT rules miniupnpd holds on ROUTER now (one line each).
router_mappings() {
  ip netns exec "$prefix$1" nft list chain inet miniupnpd prerouting_miniupnpd 2>/dev/null | grep -c dnat || true
}

punchgate_id() { node "$cli" id --identity "$1"; }

# One run: RUN is mapping or off. Leaves logs in $results/RUN.
run() {
  local name=$1 out="$results/$1" flags=() boot boot_id client_id
  [ "$name" = off ] && flags=(--no-port-mapping)
  rm -rf "$out" && mkdir -p "$out"
  rm -f "$work"/*.key "$work"/*.known-providers
  "$lab" up "$prefix" symmetric symmetric > "$out/lab.log" 2>&1 || { echo "lab up failed: $(tail -n 1 "$out/lab.log")" > "$out/error"; return 1; }
  lab_up=1
  start_miniupnpd routerA 10.1.0.0/24 nat-pmp "$out" || { echo 'miniupnpd did not start on routerA' > "$out/error"; return 1; }
  start_miniupnpd routerB 10.2.0.0/24 upnp-igd "$out" || { echo 'miniupnpd did not start on routerB' > "$out/error"; return 1; }

  boot_id=$(punchgate_id "$work/boot.key")
  boot="/ip4/$BOOT_ADDR/tcp/$BOOT_PORT/p2p/$boot_id"
  start_in boot "$out/boot.log" node "$cli" --identity "$work/boot.key" --control "$work/boot.sock" --listen "/ip4/$BOOT_ADDR/tcp/$BOOT_PORT"
  wait_for "$out/boot.log" '"event":"node.started"' || { echo 'bootstrap did not start' > "$out/error"; return 1; }
  if [ "$name" = mapping ]; then
    # punchgate netcheck names each router's protocols (it maps nothing itself).
    local host
    for host in client workhorse; do
      "$lab" exec "$prefix" "$host" node "$cli" netcheck --json --bootstrap "$boot" > "$out/netcheck-$host.json" 2> "$out/netcheck-$host.log" || true
    done
  fi
  start_in workhorse "$out/echo.log" node "$root/scripts/echo-server.mjs" "$ECHO_PORT"
  wait_for "$out/echo.log" 'listening' || { echo 'echo server did not start' > "$out/error"; return 1; }
  client_id=$(punchgate_id "$work/client.key")
  start_in workhorse "$out/workhorse.log" node "$cli" --identity "$work/workhorse.key" --control "$work/workhorse.sock" --log-level debug \
    --bootstrap "$boot" --expose "echo=127.0.0.1:$ECHO_PORT" --allow "$client_id" "${flags[@]}"
  local daemons=("${pids[-1]}")
  wait_for "$out/workhorse.log" '"event":"service.published"' || { echo 'workhorse did not publish echo' > "$out/error"; return 1; }
  if [ "$name" = mapping ]; then
    wait_for "$out/workhorse.log" '"event":"portmap.mapped"' || { echo 'workhorse: no portmap.mapped' > "$out/error"; return 1; }
  fi

  local started
  started=$(date +%s%3N)
  start_in client "$out/client.log" node "$cli" --identity "$work/client.key" --control "$work/client.sock" --log-level debug \
    --bootstrap "$boot" --tunnel-by-name "echo@127.0.0.1:$TUNNEL_PORT" "${flags[@]}"
  daemons+=("${pids[-1]}")
  start_in client "$out/probe.json" node "$root/scripts/nat-lab-echo-probe.mjs" "$TUNNEL_PORT" "$started" "$bytes"
  wait "${pids[-1]}" || true
  # The punch rounds that follow a relayed start (1 s, then 5 s) have had their chance.
  if [ "$name" = off ]; then sleep 7; fi
  router_mappings routerA > "$out/routerA.mappings-before"
  router_mappings routerB > "$out/routerB.mappings-before"
  node "$cli" status --json --control "$work/workhorse.sock" > "$out/workhorse-status.json" 2>/dev/null || true
  # Stop the daemons (not miniupnpd, not the bootstrap): their mappings must leave the routers.
  local pid
  for pid in "${daemons[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${daemons[@]}"; do timeout 10 tail --pid="$pid" -f /dev/null 2>/dev/null || true; done
  router_mappings routerA > "$out/routerA.mappings-after"
  router_mappings routerB > "$out/routerB.mappings-after"
  # PCP, which routerA's miniupnpd speaks beside NAT-PMP: map, count, delete, count.
  if [ "$name" = mapping ]; then
    local fifo="$work/pcp.in"
    mkfifo "$fifo"
    "$lab" exec "$prefix" client node "$root/scripts/portmap-lab-pcp.ts" < "$fifo" > "$out/pcp.json" 2>&1 &
    local pcp=$!
    exec 3> "$fifo"
    timeout 10 grep -q -m1 -E '"mapped"|"error"' <(tail -n +1 -F "$out/pcp.json" 2>/dev/null) || true
    router_mappings routerA > "$out/routerA.pcp-during"
    echo go >&3
    exec 3>&-
    wait "$pcp" || true
    router_mappings routerA > "$out/routerA.pcp-after"
  fi
}

mkdir -p "$results"
status=0
for name in mapping off; do
  echo "portmap-lab: $name (symmetric/symmetric; routerA NAT-PMP and PCP, routerB UPnP-IGD)"
  run "$name" || true
  stop_processes
  lab_down
  node "$root/scripts/portmap-lab-check.mjs" "$name" "$results/$name" "$FIRST_BYTE_LIMIT_S" || status=1
done
exit "$status"
