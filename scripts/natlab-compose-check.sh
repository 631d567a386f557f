#!/usr/bin/env bash
# The natlab profile of compose.yaml, without a container engine: each container becomes a
# network namespace with the address compose gives it, the routers and hosts run the
# natlab image's own scripts (deploy/natlab/nat-router, lan-host), and every daemon runs
# with the environment compose.yaml gives it. Passes when bytes sent to the client's
# tunnel come back from the workhorse's echo server.
#
#   scripts/natlab-compose-check.sh            needs root, ip, iptables, awk
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
P=pgcl   # namespace prefix: pgclinet, pgclboot, ...
NODE_BIN=$(dirname "$(node_modules/.bin/node -e 'console.log(process.execPath)')")

die() { echo "natlab-compose-check: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces)"
for tool in ip iptables awk; do command -v "$tool" >/dev/null || die "$tool not found"; done

dir=$(mktemp -d /tmp/punchgate-natlab.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for ns in inet boot router-a router-b client-net workhorse-net; do ip netns del "$P$ns" 2>/dev/null || true; done
  [ "${KEEP_LOGS:-}" = 1 ] && echo "natlab-compose-check: logs in $dir" || rm -rf "$dir"
}
trap cleanup EXIT

# compose.yaml's view of a service: `env NAME` prints its daemon environment as NAME=VALUE
# lines; `addr NAME NETWORK` its address.
compose() {
  "$NODE_BIN/node" --input-type=module -e '
    import { readFileSync } from "node:fs"
    import { parse } from "yaml"
    const [what, name, network] = process.argv.slice(1)
    const service = parse(readFileSync("compose.yaml", "utf8"), { merge: true }).services[name]
    if (what === "addr") console.log(service.networks[network].ipv4_address)
    else for (const [key, value] of Object.entries(service.environment ?? {})) console.log(`${key}=${value.replace(/\$\{\w+:-([^}]*)\}/g, "$1")}`)
  ' "$@"
}

for ns in inet boot router-a router-b client-net workhorse-net; do
  ip netns add "$P$ns"
  ip -n "$P$ns" link set lo up
done
ip -n "${P}inet" link add br0 type bridge
ip -n "${P}inet" link set br0 up

# Plugs NS into the internet bridge with ADDR/24 on interface IFACE.
internet() {
  local ns=$1 iface=$2 addr=$3
  ip -n "${P}inet" link add "p-$ns" type veth peer name "$iface" netns "$P$ns"
  ip -n "${P}inet" link set "p-$ns" master br0 up
  ip -n "$P$ns" addr add "$addr/24" dev "$iface"
  ip -n "$P$ns" link set "$iface" up
}
# Links router R and host H on a LAN: R gets R_ADDR, H gets H_ADDR (both /24).
lan() {
  local router=$1 router_addr=$2 host=$3 host_addr=$4
  ip -n "$P$router" link add eth1 type veth peer name eth0 netns "$P$host"
  ip -n "$P$router" addr add "$router_addr/24" dev eth1
  ip -n "$P$host" addr add "$host_addr/24" dev eth0
  ip -n "$P$router" link set eth1 up
  ip -n "$P$host" link set eth0 up
}

internet boot eth0 "$(compose addr lab-boot lab-internet)"
for side in a:client-net b:workhorse-net; do
  router=router-${side%%:*} host=${side#*:}
  internet "$router" eth0 "$(compose addr "$router" lab-internet)"
  lan "$router" "$(compose addr "$router" "lab-lan-${side%%:*}")" "$host" "$(compose addr "$host" "lab-lan-${side%%:*}")"
  ip netns exec "$P$router" sysctl -qw net.ipv4.ip_forward=1
done

# The natlab image's entry scripts, with the arguments compose.yaml gives them.
command_of() { "$NODE_BIN/node" --input-type=module -e '
  import { readFileSync } from "node:fs"; import { parse } from "yaml"
  console.log(parse(readFileSync("compose.yaml", "utf8"), { merge: true }).services[process.argv[1]].command.join(" "))' "$1"; }
for service in router-a router-b client-net workhorse-net; do
  read -r script args <<<"$(command_of "$service")"
  ip netns exec "$P$service" "deploy/natlab/$script" $args >"$dir/$service.log" 2>&1 &
  pids+=($!)
done
for service in client-net workhorse-net; do
  for _ in $(seq 50); do grep -q 'default route via' "$dir/$service.log" && break; sleep 0.1; done
done
for service in router-a router-b; do
  for _ in $(seq 50); do grep -q masqueraded "$dir/$service.log" && break; sleep 0.1; done
  grep -q masqueraded "$dir/$service.log" || { cat "$dir/$service.log" >&2; die "$service did not start"; }
done

# A daemon as the image runs it: the image's environment, then the service's; the
# image's paths (/data, /lab) are mapped into the temp dir and the repository.
daemon() {
  local service=$1 ns=$2
  # Containers have a file system each; here the three daemons share one, so each gets its own control socket.
  local -a env=(PATH="$NODE_BIN:/usr/bin:/bin" PUNCHGATE_IDENTITY="$dir/$service.key" PUNCHGATE_CONTROL="$dir/$service.sock")
  while IFS= read -r line; do env+=("${line//\/tmp\/lab-boot.key/$dir/lab-boot.key}"); done < <(compose env "$service")
  ip netns exec "$P$ns" env -i "${env[@]}" packages/cli/bin/punchgate.js >"$dir/$service.log" 2>&1 &
  pids+=($!)
}
ip netns exec "${P}workhorse-net" "$NODE_BIN/node" scripts/echo-server.mjs 7000 >"$dir/echo.log" 2>&1 &
pids+=($!)
# What the lab-boot entrypoint does: punchgate refuses a key file others can read.
install -m 600 deploy/natlab/lab-boot.key "$dir/lab-boot.key"
daemon lab-boot boot
daemon workhorse workhorse-net
daemon client client-net

for _ in $(seq 300); do grep -q '"tunnel.activated"' "$dir/client.log" && break; sleep 0.2; done
grep -q '"tunnel.activated"' "$dir/client.log" || { tail -n 20 "$dir"/*.log >&2; die "the client's tunnel never activated"; }
echo "natlab-compose-check: $(grep -o '"event":"tunnel.activated"[^}]*' "$dir/client.log" | head -n1)"

reply=$(ip netns exec "${P}client-net" "$NODE_BIN/node" -e '
  const socket = require("node:net").connect(7000, "127.0.0.1", () => socket.end("hello through the compose lab\n"))
  let got = ""; socket.on("data", d => { got += d }); socket.on("end", () => process.stdout.write(got))
  setTimeout(() => process.exit(1), 10000).unref()')
[ "$reply" = "hello through the compose lab" ] || die "echo through the tunnel returned '$reply'"
# The bootstrap sees both hosts only through their routers' masquerading addresses.
grep -q "\"peer.connected\".*/ip4/11.0.0.11/" "$dir/lab-boot.log" && grep -q "\"peer.connected\".*/ip4/11.0.0.12/" "$dir/lab-boot.log" || die "the bootstrap did not see the routers' addresses"
echo "natlab-compose-check: passed (echo through client -> router-a -> router-b -> workhorse)"
