#!/usr/bin/env bash
# NAT lab: Linux network namespaces that put two hosts behind two NAT routers on a
# private "internet" (11.0.0.0/8, which libp2p treats as public), with a bootstrap host
# and a second public host (boot2, for a second public node) on that internet. See
# docs/nat-traversal.md for the topology and the NAT kinds.
#
#   nat-lab.sh up PREFIX CLIENT_KIND WORKHORSE_KIND [--delay MS] [--loss PCT] [--ipv6 | --ipv6-nosyn]
#   nat-lab.sh down PREFIX                 (idempotent)
#   nat-lab.sh exec PREFIX HOST CMD...     HOST: boot boot2 client workhorse routerA routerB
#                                          carrierA carrierB (cgnat sides)
#   nat-lab.sh flush-nat PREFIX ROUTER     forget every NAT mapping (routerA or routerB)
#   nat-lab.sh status PREFIX
#
# KIND: fullcone, cone, symmetric (a random port per destination), symseq (a symmetric NAT
# whose ports are sequential: each new flow gets the next one), nosyn (a cone that drops
# every inbound bare TCP SYN), cgnat (double NAT: a home cone router whose WAN is in
# 100.64.0.0/10, behind a carrier's cone NAT, carrierA or carrierB, on the internet) or
# public (no router: the host sits on the internet).
# --ipv6: dual stack; every host also gets a global IPv6 address (2001:db9::/32, no NAT) and
# each router a stateful IPv6 firewall (replies to what its host opened, nothing else).
# --ipv6-nosyn: the same, and the IPv6 firewalls also drop every inbound bare TCP SYN (as
# nosyn does on IPv4): over IPv6 only a UDP punch can go direct.
# Every namespace is named PREFIX<name> (PREFIXinet holds the internet bridge); the lab
# touches nothing else. Needs root; installs missing Debian packages.
set -euo pipefail

readonly KINDS='fullcone cone symmetric symseq nosyn cgnat public'
readonly HOSTS='boot boot2 client workhorse routerA routerB carrierA carrierB'
readonly BOOT_IP=11.0.0.2
# A second host on the internet, with no router: a second public node runs there.
readonly BOOT2_IP=11.0.0.3
# Per side: router WAN address, LAN prefix, host address behind the router, and the
# host's own internet address when the side is public.
readonly ROUTER_WAN_client=11.0.0.11 LAN_client=10.1.0 PUBLIC_client=11.0.0.21 ROUTER_client=routerA
readonly ROUTER_WAN_workhorse=11.0.0.12 LAN_workhorse=10.2.0 PUBLIC_workhorse=11.0.0.22 ROUTER_workhorse=routerB
# cgnat: the carrier router takes the side's WAN address on the internet; between it and
# the home router lies the carrier's network, a /24 of 100.64.0.0/10 (RFC 6598).
readonly CARRIER_client=carrierA CGN_client=100.64.1
readonly CARRIER_workhorse=carrierB CGN_workhorse=100.64.2
# How long a full-cone router keeps a mapped port open to everyone after the last
# outbound packet through it (conntrack keeps the port itself for its own timeouts).
readonly FULLCONE_MAPPING_TIMEOUT=300s
readonly NAT_TABLE=natlab
# --ipv6: the internet is 2001:db9::/64 and each router's LAN a /64 of its own. Not the
# documentation prefix 2001:db8::/32, which Punchgate (holepunch/candidates.ts) treats as
# private; nothing leaves the lab's namespaces, so no real network is ever reached.
readonly NET6=2001:db9
readonly BOOT_IP6=$NET6::2 BOOT2_IP6=$NET6::3
readonly ROUTER_WAN6_client=$NET6::11 LAN6_client=$NET6:a: PUBLIC6_client=$NET6::21
readonly ROUTER_WAN6_workhorse=$NET6::12 LAN6_workhorse=$NET6:b: PUBLIC6_workhorse=$NET6::22
# Set by 'up --ipv6' (and --ipv6-nosyn, which also sets IPV6_NOSYN).
IPV6=0
IPV6_NOSYN=0

die() { echo "nat-lab: $*" >&2; exit 1; }

usage() {
  sed -n '7,22p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

check_prefix() {
  [[ "$1" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,19}$ ]] || die "bad PREFIX '$1' (letters, digits, '.', '_', '-'; at most 20)"
}

ns_exists() { [ -e "/run/netns/$1" ]; }

# The namespaces of a lab, whether or not they exist.
lab_namespaces() { local name; for name in inet $HOSTS; do echo "$1$name"; done; }

ensure_tools() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces and netfilter)"
  local need=() tool
  for tool in ip:iproute2 tc:iproute2 nft:nftables conntrack:conntrack; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
  done
  [ "${#need[@]}" -eq 0 ] && return
  echo "nat-lab: installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
}

new_namespace() {
  local ns=$1
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  if [ "$IPV6" -eq 1 ]; then
    # Addresses usable at once (no duplicate address detection), and no autoconfiguration.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
      net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0
    return
  fi
  # IPv4 only: the lab's NAT rules are IPv4, so IPv6 would be an unfiltered side door.
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

# Plugs interface IFACE of namespace NS into the internet bridge with ADDR/8 (and ADDR6/64
# with --ipv6). The bridge-side end is named PORT, inside the internet namespace only.
attach_internet() {
  local prefix=$1 port=$2 ns=$3 iface=$4 addr=$5 addr6=${6:-}
  ip -n "${prefix}inet" link add "$port" type veth peer name "$iface" netns "$ns"
  ip -n "${prefix}inet" link set "$port" master br0 up
  ip -n "$ns" addr add "$addr/8" dev "$iface"
  if [ "$IPV6" -eq 1 ]; then ip -n "$ns" addr add "$addr6/64" dev "$iface" nodad; fi
  ip -n "$ns" link set "$iface" up
}

# --ipv6: a router's firewall, as a home router's (RFC 6092): its host may open connections
# out; from the WAN only replies to those (and neighbour discovery, to the router itself) get in.
router_rules6() {
  local nosyn=''
  [ "$IPV6_NOSYN" -eq 1 ] && nosyn='    iifname "wan" tcp flags & (fin | syn | rst | ack) == syn drop comment "nosyn"'
  cat <<EOF
table ip6 $NAT_TABLE {
  chain input {
    type filter hook input priority filter; policy accept;
$nosyn
    iifname "wan" ct state established,related accept
    iifname "wan" icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
    iifname "wan" drop
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
$nosyn
    iifname "wan" ct state established,related accept
    iifname "wan" drop
  }
}
EOF
}

# --ipv6: hosts on the internet (not behind a router) reach each router's LAN through it.
route_lans6() {
  local prefix=$1 side host router_var wan_var lan_var
  for side in client workhorse; do
    router_var=ROUTER_$side wan_var=ROUTER_WAN6_$side lan_var=LAN6_$side
    ns_exists "$prefix${!router_var}" || continue
    for host in boot boot2 client workhorse routerA routerB; do
      [ "$host" = "${!router_var}" ] && continue
      ns_exists "$prefix$host" || continue
      # A host behind a router has its default route already.
      [ -n "$(ip -n "$prefix$host" -6 route show default)" ] && continue
      ip -n "$prefix$host" -6 route add "${!lan_var}:/64" via "${!wan_var}"
    done
  done
}

# symseq's ports: "0 : 30000, 1 : 30001, ..." (the counter's value to the port).
readonly SYMSEQ_FIRST_PORT=30000 SYMSEQ_PORTS=1000
symseq_ports() {
  awk -v first="$SYMSEQ_FIRST_PORT" -v n="$SYMSEQ_PORTS" 'BEGIN { for (i = 0; i < n; i++) printf "%s%d : %d", (i ? ", " : ""), i, first + i }'
}

# The router's nftables ruleset for a NAT kind; LAN_HOST is the one host behind it.
router_rules() {
  local kind=$1 lan_host=$2 wan=${3:-} masquerade=masquerade
  [ "$kind" = symmetric ] && masquerade='masquerade fully-random'
  # symseq: every new TCP/UDP flow takes the next port of 30000-30999 (one counter for all
  # flows, wrapping), whatever its destination: what port prediction assumes. Other protocols
  # (ICMP) are masqueraded as usual. The ports go through a map: nft puts a bare
  # `numgen ... offset 30000` into the port in host byte order (the ports then step by 256).
  [ "$kind" = symseq ] &&
    masquerade="meta l4proto { tcp, udp } snat to $wan : numgen inc mod $SYMSEQ_PORTS map { $(symseq_ports) } comment \"symseq\"
    oifname \"wan\" masquerade"
  # nosyn: an office firewall in front of a cone NAT. Every inbound bare SYN is dropped,
  # even one conntrack would take as the other half of a simultaneous open: TCP punching
  # cannot work, while replies to our own connects (SYN-ACK) and UDP behave as a cone's.
  local nosyn=''
  [ "$kind" = nosyn ] && nosyn='    iifname "wan" tcp flags & (fin | syn | rst | ack) == syn drop comment "nosyn"'
  cat <<EOF
table ip $NAT_TABLE {
  # A home router: nothing unsolicited from the WAN reaches the router or the LAN.
  # (Accepting it would let conntrack claim a mapping for a peer's early punch packet.)
  chain input {
    type filter hook input priority filter; policy accept;
$nosyn
    iifname "wan" ct state established,related accept
    iifname "wan" drop
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
$nosyn
    iifname "wan" ct state established,related accept
$( [ "$kind" = fullcone ] && echo '    iifname "wan" ct status dnat accept' )
    iifname "wan" drop
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" $masquerade
  }
EOF
  if [ "$kind" = fullcone ]; then
    cat <<EOF
  # Full cone: a port the NAT mapped for the LAN host (seen after masquerade, hence
  # the later priority) accepts new inbound from anyone and forwards it to that host.
  set mapped {
    type inet_proto . inet_service
    flags dynamic,timeout
    timeout $FULLCONE_MAPPING_TIMEOUT
  }
  chain remember_mapping {
    type filter hook postrouting priority srcnat + 10; policy accept;
    oifname "wan" meta l4proto { tcp, udp } update @mapped { meta l4proto . th sport }
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "wan" meta l4proto . th dport @mapped dnat to $lan_host
  }
EOF
  fi
  echo '}'
}

# cgnat: the carrier's router on the internet (the side's WAN address, a cone NAT that
# drops unsolicited inbound as every lab router does) and its network 100.64.N.0/24, on
# which the home router ROUTER_NS gets 100.64.N.2 as its "wan".
build_carrier() {
  local prefix=$1 side=$2 router_ns=$3
  local carrier_var=CARRIER_$side cgn_var=CGN_$side wan_var=ROUTER_WAN_$side
  local carrier=${!carrier_var} cgn=${!cgn_var}
  local carrier_ns=$prefix$carrier
  new_namespace "$carrier_ns"
  ip netns exec "$carrier_ns" sysctl -qw net.ipv4.ip_forward=1
  attach_internet "$prefix" "$carrier" "$carrier_ns" wan "${!wan_var}"
  ip -n "$carrier_ns" link add lan type veth peer name wan netns "$router_ns"
  ip -n "$carrier_ns" addr add "$cgn.1/24" dev lan
  ip -n "$carrier_ns" link set lan up
  ip -n "$router_ns" addr add "$cgn.2/24" dev wan
  ip -n "$router_ns" link set wan up
  ip -n "$router_ns" route add default via "$cgn.1"
  router_rules cone "$cgn.2" | ip netns exec "$carrier_ns" nft -f -
}

# One side of the lab (client or workhorse): the host, and its router unless public.
build_side() {
  local prefix=$1 side=$2 kind=$3
  local wan_var=ROUTER_WAN_$side lan_var=LAN_$side public_var=PUBLIC_$side router_var=ROUTER_$side
  local wan6_var=ROUTER_WAN6_$side lan6_var=LAN6_$side public6_var=PUBLIC6_$side
  local host_ns=$prefix$side
  new_namespace "$host_ns"
  if [ "$kind" = public ]; then
    attach_internet "$prefix" "$side" "$host_ns" eth0 "${!public_var}" "${!public6_var}"
    return
  fi
  local router=${!router_var} lan=${!lan_var}
  local router_ns=$prefix$router
  new_namespace "$router_ns"
  ip netns exec "$router_ns" sysctl -qw net.ipv4.ip_forward=1
  if [ "$kind" = cgnat ]; then
    build_carrier "$prefix" "$side" "$router_ns"
    kind=cone
  else
    attach_internet "$prefix" "$router" "$router_ns" wan "${!wan_var}" "${!wan6_var}"
  fi
  ip -n "$router_ns" link add lan type veth peer name eth0 netns "$host_ns"
  ip -n "$router_ns" addr add "$lan.1/24" dev lan
  ip -n "$router_ns" link set lan up
  ip -n "$host_ns" addr add "$lan.2/24" dev eth0
  ip -n "$host_ns" link set eth0 up
  ip -n "$host_ns" route add default via "$lan.1"
  router_rules "$kind" "$lan.2" "${!wan_var}" | ip netns exec "$router_ns" nft -f -
  [ "$IPV6" -eq 1 ] || return 0
  local lan6=${!lan6_var}
  ip netns exec "$router_ns" sysctl -qw net.ipv6.conf.all.forwarding=1
  ip -n "$router_ns" addr add "$lan6:1/64" dev lan nodad
  ip -n "$host_ns" addr add "$lan6:2/64" dev eth0 nodad
  ip -n "$host_ns" -6 route add default via "$lan6:1"
  router_rules6 | ip netns exec "$router_ns" nft -f -
}

# Impairments of the internet segment. Each packet crosses the bridge once, so a
# delay is one-way: the round trip between two sites grows by 2 x delay.
# Loss: a random drop of IPv4 frames on the bridge (nftables, any kernel).
# Delay: netem on each bridge port's egress (needs a kernel with sch_netem).
add_impairments() {
  local prefix=$1 delay=$2 loss=$3 port
  if [ -n "$loss" ]; then
    ip netns exec "${prefix}inet" nft -f - <<EOF
table bridge $NAT_TABLE {
  chain forward {
    type filter hook forward priority filter; policy accept;
    ether type ip numgen random mod 10000 < $(awk -v p="$loss" 'BEGIN { printf "%d", p * 100 }') drop
  }
}
EOF
  fi
  [ -n "$delay" ] || return 0
  for port in $(ip -n "${prefix}inet" -o link show master br0 | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'); do
    tc -n "${prefix}inet" qdisc add dev "$port" root netem delay "${delay}ms" limit 100000 2>/dev/null ||
      die "--delay needs the netem qdisc, which this kernel lacks (CONFIG_NET_SCH_NETEM)"
  done
}

cmd_up() {
  [ $# -ge 3 ] || usage
  local prefix=$1 client_kind=$2 workhorse_kind=$3 delay='' loss='' ns kind
  shift 3
  while [ $# -gt 0 ]; do
    case "$1" in
      --delay) [[ "${2:-}" =~ ^[0-9]+$ ]] || die "--delay needs milliseconds"; delay=$2; shift 2 ;;
      --loss) [[ "${2:-}" =~ ^([0-9]{1,2}(\.[0-9]{1,2})?|100)$ ]] || die "--loss needs a percentage (0-100, two decimals)"; loss=$2; shift 2 ;;
      --ipv6) IPV6=1; shift ;;
      --ipv6-nosyn) IPV6=1; IPV6_NOSYN=1; shift ;;
      *) usage ;;
    esac
  done
  check_prefix "$prefix"
  for kind in "$client_kind" "$workhorse_kind"; do
    [[ " $KINDS " == *" $kind "* ]] || die "unknown NAT kind '$kind' (one of: $KINDS)"
    if [ "$kind" = cgnat ] && [ "$IPV6" -eq 1 ]; then die "cgnat has no --ipv6 variant"; fi
  done
  ensure_tools
  for ns in $(lab_namespaces "$prefix"); do
    ns_exists "$ns" && die "namespace $ns exists: run 'nat-lab.sh down $prefix' first"
  done

  # A half-built lab is torn down, so a failed 'up' leaves nothing behind.
  trap "status=\$?; [ \$status -eq 0 ] || cmd_down '$prefix'; exit \$status" EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  new_namespace "${prefix}inet"
  ip -n "${prefix}inet" link add br0 type bridge
  ip -n "${prefix}inet" link set br0 up
  new_namespace "${prefix}boot"
  attach_internet "$prefix" boot "${prefix}boot" eth0 "$BOOT_IP" "$BOOT_IP6"
  new_namespace "${prefix}boot2"
  attach_internet "$prefix" boot2 "${prefix}boot2" eth0 "$BOOT2_IP" "$BOOT2_IP6"
  build_side "$prefix" client "$client_kind"
  build_side "$prefix" workhorse "$workhorse_kind"
  if [ "$IPV6" -eq 1 ]; then route_lans6 "$prefix"; fi
  add_impairments "$prefix" "$delay" "$loss"
  trap - EXIT INT TERM
  echo "nat-lab: $prefix up: client $client_kind, workhorse $workhorse_kind${delay:+, delay ${delay} ms}${loss:+, loss ${loss}%}$( [ "$IPV6" -eq 1 ] && echo ", IPv6 behind stateful firewalls$( [ "$IPV6_NOSYN" -eq 1 ] && echo ' that drop inbound SYNs')")"
}

cmd_down() {
  [ $# -eq 1 ] || usage
  local prefix=$1 ns pid pids
  check_prefix "$prefix"
  for ns in $(lab_namespaces "$prefix"); do
    ns_exists "$ns" || continue
    # Whatever still runs inside was started in this lab: stop it so the namespace goes.
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    if [ -n "$pids" ]; then
      kill $pids 2>/dev/null || true
      for _ in 1 2 3 4 5 6 7 8 9 10; do
        pids=$(for pid in $pids; do if kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi; done)
        [ -z "$pids" ] && break
        sleep 0.2
      done
      if [ -n "$pids" ]; then kill -9 $pids 2>/dev/null || true; fi
    fi
    ip netns del "$ns"
  done
}

host_namespace() {
  local prefix=$1 host=$2
  [[ " $HOSTS " == *" $host "* ]] || die "unknown host '$host' (one of: $HOSTS)"
  ns_exists "$prefix$host" || die "no namespace $prefix$host (lab not up, or that side is public)"
  echo "$prefix$host"
}

cmd_exec() {
  [ $# -ge 3 ] || usage
  check_prefix "$1"
  local ns
  ns=$(host_namespace "$1" "$2")
  shift 2
  # exec, so a caller that backgrounds this gets the command's own pid.
  exec ip netns exec "$ns" "$@"
}

cmd_flush_nat() {
  [ $# -eq 2 ] || usage
  check_prefix "$1"
  [[ "$2" == routerA || "$2" == routerB ]] || die "flush-nat takes routerA or routerB"
  local ns
  ns=$(host_namespace "$1" "$2")
  ip netns exec "$ns" conntrack -F >/dev/null 2>&1
  ip netns exec "$ns" nft flush set ip "$NAT_TABLE" mapped 2>/dev/null || true
  echo "nat-lab: $2 forgot its NAT mappings"
}

router_kind() {
  local rules
  rules=$(ip netns exec "$1" nft list table ip "$NAT_TABLE" 2>/dev/null) || { echo unknown; return; }
  case "$rules" in
    *'set mapped'*) echo fullcone ;;
    *'"nosyn"'*) echo nosyn ;;
    *'"symseq"'*) echo symseq ;;
    *fully-random*) echo symmetric ;;
    *) echo cone ;;
  esac
}

cmd_status() {
  [ $# -eq 1 ] || usage
  check_prefix "$1"
  local prefix=$1 host ns found=0
  for host in $HOSTS; do
    ns=$prefix$host
    ns_exists "$ns" || continue
    found=1
    printf '%-10s %-16s %s\n' "$host" "$ns" "$(ip -n "$ns" -o addr show scope global | awk '{ printf "%s ", $4 }')"
    if [[ "$host" == router* || "$host" == carrier* ]]; then
      printf '%-10s %-16s kind %s, %s tracked connections\n' '' '' "$(router_kind "$ns")" \
        "$(ip netns exec "$ns" conntrack -C 2>/dev/null || echo '?')"
    fi
  done
  if ns_exists "${prefix}inet"; then
    tc -n "${prefix}inet" qdisc show | awk '/netem/ { sub(/.*netem /, ""); print "internet   netem " $0; exit }'
    ip netns exec "${prefix}inet" nft list table bridge "$NAT_TABLE" 2>/dev/null |
      awk '/numgen/ { print "internet   loss " $(NF-1) / 100 "%" }'
  fi
  [ "$found" -eq 1 ] || echo "nat-lab: $prefix is down"
}

main() {
  [ $# -ge 1 ] || usage
  local command=$1
  shift
  case "$command" in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    exec) cmd_exec "$@" ;;
    flush-nat) cmd_flush_nat "$@" ;;
    status) cmd_status "$@" ;;
    -h|--help|help) usage ;;
    *) usage ;;
  esac
}

main "$@"
