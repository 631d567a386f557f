#!/usr/bin/env bash
# Clean-room install: what a user gets from `npm pack` + `npm install -g`, with nothing
# of the checkout on PATH. Packs packages/cli, installs the tarball into a temp prefix,
# then with PATH holding only that prefix and Node's own directory:
#   - the tarball holds no tests, no sources, no source maps;
#   - `punchgate --version` and `npx --package ./punchgate-VERSION.tgz punchgate --version`;
#   - a bootstrap, a provider (started with --config FILE) and a client, all from the
#     installed binary, carry bytes byte-exact through a tunnel by name;
#   - `punchgate up` (with a recording fake systemctl) writes a unit that runs the
#     installed bin with the Node that ran `up`, not a checkout path.
# Logs are kept in $INSTALL_LOG_DIR (default test-results/install).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
node_bin=$(dirname "$(readlink -f "$root/node_modules/.bin/node")")
npm_cli=$(command -v npm)
logs=${INSTALL_LOG_DIR:-$root/test-results/install}
work=$(mktemp -d)
mkdir -p "$logs"
rm -f "$logs"/*.log
pids=()

suite=install-test
# suite_cleanup, wait_for, free_port
source "$root/scripts/loopback-suite.sh"
trap suite_cleanup EXIT

fail() { echo "install-test: $*" >&2; exit 1; }

# 1. Pack (prepack builds the bundle) and look inside.
PATH="$node_bin:$PATH" "$npm_cli" pack --workspace packages/cli --pack-destination "$work" > "$logs/pack.log" 2>&1
tarball=$(ls "$work"/punchgate-*.tgz)
size=$(stat -c %s "$tarball")
echo "install-test: $(basename "$tarball"), $((size / 1024)) KiB packed"
tar -tzf "$tarball" > "$work/files"
if grep -E '(^|/)(test|src)/|\.map$|\.ts$' "$work/files"; then fail "the tarball ships tests, sources or maps (above)"; fi
grep -qx 'package/bin/punchgate.js' "$work/files" || fail "no bin/punchgate.js in the tarball"
grep -qx 'package/dist/punchgate.js' "$work/files" || fail "no dist/punchgate.js in the tarball"

# 2. Install it globally into a temp prefix, as a user would (deps come from the registry).
prefix="$work/prefix"
PATH="$node_bin:$PATH" "$npm_cli" install -g --prefix "$prefix" --no-audit --no-fund "$tarball" > "$logs/install.log" 2>&1 ||
  fail "npm install -g failed: $(tail -n 3 "$logs/install.log")"
clean_path="$prefix/bin:$node_bin"

run() { env -i HOME="$work/home" PATH="$clean_path" "$@"; }
# A daemon in the background (`daemon ... &`): exec, so that `$!` is the daemon itself and the
# cleanup trap stops it (with `run ... &`, `$!` was the subshell, and the daemons outlived the test).
daemon() { exec env -i HOME="$work/home" PATH="$clean_path" "$@"; }
version=$(run punchgate --version)
[ "$version" = "$(node -p 'require(process.argv[1]).version' "$root/packages/cli/package.json")" ] || fail "installed punchgate --version printed '$version'"
# npx needs npm itself on PATH (the system's, run by this Node) and npm's settings (registry, CA): the user's environment.
(cd "$work" && PATH="$node_bin:$(dirname "$npm_cli")" npx --yes --package "./$(basename "$tarball")" punchgate --version > "$logs/npx.log" 2>&1) ||
  fail "npx --package ./$(basename "$tarball") punchgate --version failed: $(tail -n 3 "$logs/npx.log")"
grep -qx "$version" "$logs/npx.log" || fail "npx printed $(cat "$logs/npx.log")"

# 3. A tunnel between daemons run from the installed binary.
mkdir -m 700 "$work/keys"
echo_port=$(free_port)
boot_port=$(free_port)
bind_port=$(free_port)
"$node_bin/node" "$root/scripts/echo-server.mjs" "$echo_port" > "$logs/echo.log" 2>&1 &
pids+=($!)
boot_id=$(run punchgate id --identity "$work/keys/boot.key")
client_id=$(run punchgate id --identity "$work/keys/client.key")
boot="/ip4/127.0.0.1/tcp/$boot_port/p2p/$boot_id"

daemon punchgate --identity "$work/keys/boot.key" --listen "/ip4/127.0.0.1/tcp/$boot_port" > "$logs/bootstrap.log" 2>&1 &
pids+=($!)
wait_for "$logs/bootstrap.log" '"event":"node.started"'
# The provider reads its options from a TOML file (--config); its identity path is relative
# to the file.
cat > "$work/keys/provider.toml" <<EOF
identity = "provider.key"
listen = ["/ip4/127.0.0.1/tcp/0"]
bootstrap = ["$boot"]
expose = ["echo=127.0.0.1:$echo_port"]
allow = ["$client_id"]
EOF
daemon punchgate --config "$work/keys/provider.toml" > "$logs/provider.log" 2>&1 &
pids+=($!)
wait_for "$logs/provider.log" '"event":"service.published"'
daemon punchgate --identity "$work/keys/client.key" --listen /ip4/127.0.0.1/tcp/0 --bootstrap "$boot" \
  --tunnel-by-name "echo@127.0.0.1:$bind_port" > "$logs/client.log" 2>&1 &
pids+=($!)
wait_for "$logs/client.log" '"event":"tunnel.activated"'

head -c 1048576 /dev/urandom > "$work/sent"
"$node_bin/node" -e '
  const net = require("net"), fs = require("fs")
  const [port, sent, got] = process.argv.slice(1)
  const socket = net.connect(Number(port), "127.0.0.1", () => { socket.end(fs.readFileSync(sent)) })
  const chunks = []
  socket.on("data", c => chunks.push(c))
  socket.on("end", () => fs.writeFileSync(got, Buffer.concat(chunks)))
  socket.setTimeout(20000, () => { console.error("timed out"); process.exit(1) })
' "$bind_port" "$work/sent" "$work/got"
cmp "$work/sent" "$work/got" || fail "1 MiB through the installed binaries did not come back byte-exact"
echo "install-test: 1 MiB echoed byte-exact through a tunnel by name between installed daemons"

# 4. `punchgate up` from the global install: the unit names the installed bin and this Node.
mkdir -p "$work/fakes" "$work/home"
printf '#!/bin/sh\necho "$0 $*" >> %q\nexit 0\n' "$work/systemctl.calls" > "$work/fakes/systemctl"
chmod +x "$work/fakes/systemctl"
env -i HOME="$work/home" PATH="$clean_path:$work/fakes" XDG_CONFIG_HOME="$work/home/.config" \
  punchgate up --bootstrap "$boot" > "$logs/up.log" 2>&1 || fail "punchgate up failed: $(cat "$logs/up.log")"
unit="$work/home/.config/systemd/user/punchgate.service"
[ -f "$unit" ] || fail "punchgate up wrote no unit at $unit"
exec_start=$(grep '^ExecStart=' "$unit")
installed_bin=$(readlink -f "$prefix/lib/node_modules/punchgate/bin/punchgate.js")
case "$exec_start" in
  "ExecStart=$(readlink -f "$node_bin/node") "*" $installed_bin") ;;
  "ExecStart=$node_bin/node "*" $installed_bin") ;;
  *) fail "the unit does not run the installed bin with its Node: $exec_start" ;;
esac
case "$exec_start" in *"$root"/packages*) fail "the unit names the checkout: $exec_start" ;; esac
echo "install-test: punchgate up from the global install runs $installed_bin"
echo "install-test: passed"
