#!/usr/bin/env bash
# End-to-end: the README walk-through as real processes on loopback. A TCP echo
# server, a bootstrap, peer B exposing the echo server, peer A tunnelling to it by
# name and by peer id; checks the echo byte-exact and half-close. Logs are kept in
# $E2E_LOG_DIR (default test-results/e2e). E2E_HOLD=SECONDS keeps the mesh up that much
# longer after the checks (to record longer logs, e.g. for analyze fixtures).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$root/node_modules/.bin:$PATH"
logs=${E2E_LOG_DIR:-$root/test-results/e2e}
work=$(mktemp -d)
mkdir -p "$logs"
rm -f "$logs"/*.log
pids=()

suite=e2e
# suite_cleanup, wait_for, free_port
source "$root/scripts/loopback-suite.sh"
trap suite_cleanup EXIT

punchgate() {
  node "$root/packages/cli/bin/punchgate.js" "$@"
}

# For `daemon ... &`: exec makes the background job's pid node's own, so cleanup's kill
# reaches the daemon instead of leaving it orphaned behind a subshell.
daemon() {
  exec node "$root/packages/cli/bin/punchgate.js" "$@"
}

echo_port=$(free_port)
boot_port=$(free_port)
a_port=$(free_port)
a_peer_port=$(free_port)

node "$root/scripts/echo-server.mjs" "$echo_port" > "$logs/echo.log" 2>&1 &
pids+=($!)

boot_id=$(punchgate id --identity "$work/boot.key")
b_id=$(punchgate id --identity "$work/b.key")
a_id=$(punchgate id --identity "$work/a.key")
boot="/ip4/127.0.0.1/tcp/$boot_port/p2p/$boot_id"

# Each daemon gets its own control socket: the default one allows one daemon per user.
daemon --identity "$work/boot.key" --listen "/ip4/127.0.0.1/tcp/$boot_port" --control "$work/boot.sock" > "$logs/bootstrap.log" 2>&1 &
pids+=($!)
wait_for "$logs/bootstrap.log" '"event":"node.started"'

daemon --identity "$work/b.key" --listen /ip4/127.0.0.1/tcp/0 --bootstrap "$boot" --control "$work/b.sock" \
  --expose "echo=127.0.0.1:$echo_port" --allow "$a_id" > "$logs/peer-b.log" 2>&1 &
pids+=($!)
wait_for "$logs/peer-b.log" '"event":"service.published"'

daemon --identity "$work/a.key" --listen /ip4/127.0.0.1/tcp/0 --bootstrap "$boot" --control "$work/a.sock" \
  --tunnel-by-name "echo@127.0.0.1:$a_port" --tunnel "$b_id:echo@127.0.0.1:$a_peer_port" > "$logs/peer-a.log" 2>&1 &
pids+=($!)
wait_for "$logs/peer-a.log" '"event":"tunnel.activated".*"tunnel":"echo@'
wait_for "$logs/peer-a.log" "\"event\":\"tunnel.activated\".*\"tunnel\":\"$b_id:echo@"

check_echo() {
  local port=$1 label=$2
  head -c 1048576 /dev/urandom > "$work/in.bin"
  # The client sends, half-closes, and must still receive every byte back.
  node -e '
    const net = require("net"), fs = require("fs")
    const data = fs.readFileSync(process.argv[1]); const chunks = []
    const s = net.connect({ port: Number(process.argv[2]), host: "127.0.0.1", allowHalfOpen: true }, () => s.end(data))
    s.on("data", c => chunks.push(c))
    s.on("end", () => { fs.writeFileSync(process.argv[3], Buffer.concat(chunks)); s.destroy() })
    s.on("error", e => { console.error(e.message); process.exit(1) })
  ' "$work/in.bin" "$port" "$work/out.bin"
  if ! cmp -s "$work/in.bin" "$work/out.bin"; then
    echo "e2e: $label: echo differs ($(stat -c %s "$work/out.bin") of 1048576 bytes back)" >&2
    return 1
  fi
  echo "e2e: $label: 1 MiB echoed byte-exact with half-close"
}

check_echo "$a_port" "tunnel by name"
check_echo "$a_peer_port" "tunnel by peer id"

# stdin/stdout through the daemon's control socket, as an ssh ProxyCommand would use it.
punchgate connect echo --control "$work/a.sock" < "$work/in.bin" > "$work/out.bin"
if ! cmp -s "$work/in.bin" "$work/out.bin"; then
  echo "e2e: connect: echo differs ($(stat -c %s "$work/out.bin") of 1048576 bytes back)" >&2
  exit 1
fi
echo "e2e: connect: 1 MiB echoed byte-exact through the daemon's control socket"
punchgate status --control "$work/a.sock" > "$logs/status-a.txt"
grep -Eq '^role: +private \(.*\), phase ready$' "$logs/status-a.txt"
wait_for "$logs/peer-a.log" '"event":"tunnel.closed"'
wait_for "$logs/peer-b.log" '"event":"tunnel.closed"'
sleep "${E2E_HOLD:-0}"
echo "e2e: ok"
