#!/usr/bin/env bash
# Hard NATs in the NAT lab, with bare UDP sockets (scripts/nat-lab-hardnat-bare.mjs), no Punchgate:
# can the birthday method or port prediction get through a lab router at all, and how often?
# The client sits behind KIND (the hard side), the workhorse behind a cone (its socket on
# 40000 keeps that port). Every run starts with both routers' mappings flushed. Needs root.
#
#   nat-lab-hardnat-bare.sh KIND METHOD RUNS
#     KIND    symmetric (random ports) or symseq (sequential ports), see nat-lab.sh
#     METHOD  birthday: the client fans out HARDNAT_SOCKETS sockets towards the workhorse's
#             mapping, the workhorse sprays HARDNAT_PROBES random ports of the client's router
#             at HARDNAT_RATE/s; predict: a fresh client socket is seen by an observer on the
#             bootstrap host (port p), then sends to the workhorse, which probes p+1..p+16
#   HARDNAT_SOCKETS (256), HARDNAT_PROBES (1024), HARDNAT_RATE (250), HARDNAT_MS (per run, 6000)
#   HARDNAT_MIN_WINS  exit 1 when fewer runs won (default 0: a measurement, never fails)
#
# Prints one JSON line per run and a summary line: "KIND METHOD: W of RUNS won, ms ...".
set -euo pipefail

[ $# -eq 3 ] || { sed -n '6,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
kind=$1 method=$2 runs=$3
[[ "$kind" == symmetric || "$kind" == symseq ]] || { echo "nat-lab-hardnat-bare: KIND is symmetric or symseq" >&2; exit 2; }
[[ "$method" == birthday || "$method" == predict ]] || { echo "nat-lab-hardnat-bare: METHOD is birthday or predict" >&2; exit 2; }
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "nat-lab-hardnat-bare: RUNS is a positive number" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "nat-lab-hardnat-bare: needs root (network namespaces)" >&2; exit 2; }

readonly SOCKETS=${HARDNAT_SOCKETS:-256} PROBES=${HARDNAT_PROBES:-1024} RATE=${HARDNAT_RATE:-250} MS=${HARDNAT_MS:-6000}
readonly CLIENT_WAN=11.0.0.11 WORKHORSE_WAN=11.0.0.12 CONE_PORT=40000 OBSERVER=11.0.0.2:5001 WINDOW=16
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$root/node_modules/.bin:$PATH"
lab="$root/scripts/nat-lab.sh"
tool="$root/scripts/nat-lab-hardnat-bare.mjs"
prefix=${NATLAB_PREFIX:-pgh-$$-}
work=$(mktemp -d)
pids=()
lab_up=0
START_TIMEOUT_S=10
# lab_cleanup, start_in, wait_for
source "$root/scripts/lab-processes.sh"
trap lab_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bash "$lab" up "$prefix" "$kind" cone > "$work/lab.log" 2>&1 || { tail -n 3 "$work/lab.log" >&2; exit 1; }
lab_up=1

birthday_run() {
  start_in client "$work/fan" node "$tool" fan "$WORKHORSE_WAN:$CONE_PORT" "$SOCKETS" "$MS"
  # The fan-out's sockets are bound and have sent once before the spray begins.
  sleep 0.5
  start_in workhorse "$work/spray" node "$tool" spray "$CLIENT_WAN" "$CONE_PORT" "$PROBES" "$RATE" "$MS"
  wait "${pids[@]}" || true
  pids=()
  printf '{"fan":%s,"spray":%s}' "$(cat "$work/fan")" "$(cat "$work/spray")"
}

predict_run() {
  local seen port
  start_in boot "$work/observe" node "$tool" observe "${OBSERVER#*:}" "$MS"
  sleep 0.3
  start_in client "$work/predict" node "$tool" predict "$WORKHORSE_WAN:$CONE_PORT" "$OBSERVER" "$MS"
  wait_for "$work/observe" 'seen' || true
  seen=$(sed -n 's/.*"seen":"\([^"]*\)".*/\1/p' "$work/observe")
  port=${seen##*:}
  if [ -n "$port" ]; then
    start_in workhorse "$work/window" node "$tool" window "$CLIENT_WAN" "$((port + 1))" "$WINDOW" "$CONE_PORT" "$MS"
  else
    echo '{"won":false,"error":"observer saw nothing"}' > "$work/window"
  fi
  wait "${pids[@]}" || true
  pids=()
  printf '{"observed":"%s","predict":%s,"window":%s}' "$seen" "$(cat "$work/predict")" "$(cat "$work/window")"
}

won=0 times=()
for run in $(seq 1 "$runs"); do
  for router in routerA routerB; do bash "$lab" flush-nat "$prefix" "$router" > /dev/null; done
  rm -f "$work"/fan "$work"/spray "$work"/observe "$work"/predict "$work"/window
  line=$("${method}_run")
  echo "{\"kind\":\"$kind\",\"method\":\"$method\",\"run\":$run,\"result\":$line}"
  # Won: both ends heard the other (the hard side's socket and the cone side's).
  if [ "$(grep -o '"won":true' <<< "$line" | wc -l)" -eq 2 ]; then
    won=$((won + 1))
    times+=("$(grep -o '"ms":[0-9]*' <<< "$line" | tail -n 1 | cut -d: -f2)")
  fi
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n | paste -sd' ')
echo "$kind $method: $won of $runs won; cone side's ms to the hit, sorted: ${sorted:-none}"
if [ "$won" -lt "${HARDNAT_MIN_WINS:-0}" ]; then
  echo "nat-lab-hardnat-bare: $won of $runs won, fewer than HARDNAT_MIN_WINS=$HARDNAT_MIN_WINS" >&2
  exit 1
fi
