#!/usr/bin/env bash
# Self-test of the NAT lab: proves each NAT kind behaves as docs/nat-traversal.md says,
# with the UDP/TCP probes of scripts/nat-probe.mjs. The client side takes the kind under
# test; the workhorse is public (11.0.0.22) and plays "someone else on the internet";
# the bootstrap host (11.0.0.2) runs reflectors on ports 5001 and 5002. Needs root.
#   NATLAB_PREFIX   namespace prefix (default pgls-<pid>-, so parallel runs never meet)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$root/node_modules/.bin:$PATH"
lab="$root/scripts/nat-lab.sh"
prefix=${NATLAB_PREFIX:-pgls-$$-}
[ "$(id -u)" -eq 0 ] || { echo "nat-lab-selftest: needs root (network namespaces)" >&2; exit 2; }
work=$(mktemp -d)
reflector_pid=''
receiver_pid=''
# Set once this run's 'up' succeeded: a failed 'up' may mean the names belong to another run.
lab_up=0
failures=0
port=40000
# Bounds for the probes' own waits; a check ends earlier, on an event or a verdict.
readonly RECEIVER_MAX_MS=60000 PUNCH_WAIT_MS=5000

cleanup() {
  local status=$?
  if [ -n "$receiver_pid" ]; then kill "$receiver_pid" 2>/dev/null || true; fi
  stop_reflector
  lab_down
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

stop_reflector() {
  if [ -n "$reflector_pid" ]; then
    kill "$reflector_pid" 2>/dev/null || true
    wait "$reflector_pid" 2>/dev/null || true
    reflector_pid=''
  fi
}

probe() {
  local host=$1
  shift
  "$lab" exec "$prefix" "$host" node "$root/scripts/nat-probe.mjs" "$@"
}

# Waits (bounded) until FILE has a line matching PATTERN.
wait_for() {
  local file=$1 pattern=$2
  timeout 10 grep -m1 -q -E "$pattern" <(tail -n +1 -F "$file" 2>/dev/null) ||
    { echo "selftest: timed out waiting for /$pattern/ in $file" >&2; return 1; }
}

# check LABEL PATTERN CMD...: runs CMD in this shell (so the port counter advances)
# and compares its last output line with a bash pattern.
check() {
  local label=$1 expected=$2 actual
  shift 2
  "$@" > "$work/actual" || echo "error (exit $?)" >> "$work/actual"
  actual=$(tail -n 1 "$work/actual")
  if [[ "$actual" == $expected ]]; then
    echo "  ok    $label: $actual"
  else
    echo "  FAIL  $label: got '$actual', want '$expected'"
    failures=$((failures + 1))
  fi
}

lab_down() {
  if [ "$lab_up" -eq 1 ]; then
    "$lab" down "$prefix"
    lab_up=0
  fi
}

new_lab() {
  stop_reflector
  lab_down
  "$lab" up "$prefix" "$@"
  lab_up=1
  # Not through probe(): a function run in the background would leave $! a subshell's pid.
  "$lab" exec "$prefix" boot node "$root/scripts/nat-probe.mjs" reflect 5001 5002 > "$work/reflector.out" 2>&1 &
  reflector_pid=$!
  wait_for "$work/reflector.out" '^ready'
}

next_port() { port=$((port + 1)); }

# The two addresses the reflectors saw for one local port, space-separated.
mapping() {
  local proto=$1
  next_port
  probe client mapping "$proto" "$port" 11.0.0.2:5001 11.0.0.2:5002
}

# A probe listening on the client, started in the background with its own pid.
start_receiver() {
  local out=$1
  shift
  "$lab" exec "$prefix" client node "$root/scripts/nat-probe.mjs" "$@" > "$out" 2>&1 &
  receiver_pid=$!
}

# Called once the sender is done: what the receiver heard. It exits as soon as anything
# arrives; if it is still waiting a second after the sender finished, nothing came.
receiver_verdict() {
  local out=$1
  timeout 1 tail --pid="$receiver_pid" -f /dev/null 2>/dev/null || kill "$receiver_pid" 2>/dev/null || true
  wait "$receiver_pid" 2>/dev/null || true
  receiver_pid=''
  grep -m1 '^received ' "$out" || echo nothing
}

# Opens a mapping on the client via a reflector, lets SENDER_HOST send to the mapped
# address (from FROM_PORT if given), prints what reached the client.
unsolicited() {
  local proto=$1 sender=$2 from_port=${3:-} out mapped
  next_port
  out="$work/inbound-$port"
  start_receiver "$out" inbound "$proto" "$port" 11.0.0.2:5001 "$RECEIVER_MAX_MS"
  wait_for "$out" '^mapped '
  mapped=$(awk '/^mapped / { print $2 }' "$out")
  probe "$sender" send "$proto" "$mapped" $from_port > /dev/null
  receiver_verdict "$out"
}

# A port the client listens on but never sent from: what reaches it from the workhorse.
unmapped() {
  local proto=$1 router_wan=$2 out
  next_port
  out="$work/listen-$port"
  start_receiver "$out" listen "$proto" "$port" "$RECEIVER_MAX_MS"
  wait_for "$out" '^listening'
  probe workhorse send "$proto" "$router_wan:$port" > /dev/null
  receiver_verdict "$out"
}

# Both hosts punch UDP to each other's router at the same (preserved) port; the client
# starts early, so its first packets hit the workhorse's router before that router has a
# mapping: they must be dropped without spoiling the later punch (see the INPUT trap in
# docs/nat-traversal.md). Prints what each side heard.
punch_pair() {
  local out pid a b
  next_port
  out="$work/punch-$port"
  probe client punch "$port" "11.0.0.12:$port" "$PUNCH_WAIT_MS" > "$out.client" &
  pid=$!
  # The stagger is the point of the test, not a wait for an event.
  sleep 0.5
  b=$(probe workhorse punch "$port" "11.0.0.11:$port" "$PUNCH_WAIT_MS")
  wait "$pid"
  a=$(cat "$out.client")
  echo "client ${a%% *}, workhorse ${b%% *}"
}

# Whether the reflectors saw the same address for one local port.
mapping_kind() {
  local a b
  read -r a b < <(mapping "$1")
  if [ "$a" = "$b" ]; then echo "same ($a)"; else echo "different ($a, $b)"; fi
}

echo "selftest: cone (MASQUERADE: endpoint-independent mapping, port-restricted filtering)"
new_lab cone public
for proto in udp tcp; do
  check "$proto mapping for two destinations" "same (11.0.0.11:*" mapping_kind "$proto"
  check "$proto unsolicited from another host" nothing unsolicited "$proto" workhorse
done
check "udp from the reflector's host, other port" nothing unsolicited udp boot 5003
check "udp to a port never mapped" nothing unmapped udp 11.0.0.11

echo "selftest: cone/cone"
new_lab cone cone
check "udp hole punch, client 0.5 s early" "client received, workhorse received" punch_pair

echo "selftest: nosyn/nosyn (a cone that drops inbound bare SYNs: UDP still punches, TCP dials out)"
new_lab nosyn nosyn
check "udp hole punch, client 0.5 s early" "client received, workhorse received" punch_pair
check "tcp mapping for two destinations" "same (11.0.0.11:*" mapping_kind tcp

echo "selftest: cgnat (double NAT: a home cone behind a carrier cone in 100.64.0.0/10)"
new_lab cgnat cone
for proto in udp tcp; do
  check "$proto mapping for two destinations" "same (11.0.0.11:*" mapping_kind "$proto"
  check "$proto unsolicited from another host" nothing unsolicited "$proto" workhorse
done
check "udp hole punch with a cone, client 0.5 s early" "client received, workhorse received" punch_pair

echo "selftest: symmetric/symmetric"
new_lab symmetric symmetric
check "udp hole punch, client 0.5 s early" "client nothing, workhorse nothing" punch_pair

echo "selftest: symmetric (MASQUERADE --random-fully)"
new_lab symmetric public
for proto in udp tcp; do
  check "$proto mapping for two destinations" "different (11.0.0.11:*" mapping_kind "$proto"
  check "$proto unsolicited from another host" nothing unsolicited "$proto" workhorse
done

echo "selftest: fullcone (inbound to a mapped port reaches the host)"
new_lab fullcone public
for proto in udp tcp; do
  check "$proto mapping for two destinations" "same (11.0.0.11:*" mapping_kind "$proto"
  check "$proto unsolicited from another host" "received 11.0.0.22:*" unsolicited "$proto" workhorse
  check "$proto to a port never mapped" nothing unmapped "$proto" 11.0.0.11
done

echo "selftest: public (no NAT)"
new_lab public public
for proto in udp tcp; do
  check "$proto mapping for two destinations" "same (11.0.0.21:*" mapping_kind "$proto"
  check "$proto unsolicited from another host" "received 11.0.0.22:*" unsolicited "$proto" workhorse
done
check "udp round trips without loss" "answered 400 of 400" probe client loss 11.0.0.2:5001 400

echo "selftest: --loss 50 (each way, so ~25% of round trips survive)"
new_lab public public --loss 50
check "udp round trips, 10% to 45% answered" "answered @(4[0-9]|[5-9][0-9]|1[0-7][0-9]) of 400" \
  probe client loss 11.0.0.2:5001 400

if [ "$failures" -gt 0 ]; then
  echo "selftest: $failures check(s) FAILED" >&2
  exit 1
fi
echo "selftest: ok"
