#!/usr/bin/env bash
# Hard-NAT success rate (docs/nat-traversal.md "Hard NATs"): runs the symmetric-vs-cone
# scenarios (udp-cone-symmetric, udp-symmetric-cone) RUNS times each, 1 MiB
# echoed, holding each run up to 20 s for a direct connection, and prints one line per run
# (did the tunnel go direct, which method, which round, time to direct from the client's
# start) and a summary. Needs root.
#
#   RUNS=20 OUT=test-results/hardnat bash scripts/nat-lab-hardnat-series.sh
#   (on a shared machine: several shorter series under flock, same OUT, then SUMMARY_ONLY=1)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${RUNS:-20}
out=${OUT:-$root/test-results/hardnat}
scenarios=${SCENARIOS:-udp-cone-symmetric,udp-symmetric-cone}
mkdir -p "$out"

if [ "${SUMMARY_ONLY:-0}" != 1 ]; then
  first=$(( $(find "$out" -maxdepth 1 -type d -name 'run*' | wc -l) + 1 ))
  for i in $(seq "$first" $(( first + runs - 1 ))); do
    NATLAB_BYTES=1048576 NATLAB_HOLD_DIRECT_S=20 NATLAB_SCENARIOS="$scenarios" NATLAB_RESULTS="$out/run$i" \
      bash "$root/scripts/nat-lab-test.sh" > "$out/run$i.log" 2>&1 || true
  done
fi

# One line per scenario run: name, direct?, method, round, ms to direct from the client's start.
node - "$out" "$scenarios" <<'JS'
const fs = require('node:fs')
const path = require('node:path')
const [dir, scenarios] = process.argv.slice(2)
const runs = fs.readdirSync(dir).filter(d => /^run\d+$/.test(d)).sort((a, b) => a.slice(3) - b.slice(3))
const stats = {}
for (const run of runs) {
  for (const name of scenarios.split(',')) {
    const d = path.join(dir, run, name)
    if (!fs.existsSync(path.join(d, 'scenario.json'))) continue
    const scenario = JSON.parse(fs.readFileSync(path.join(d, 'scenario.json'), 'utf8'))
    const events = fs.readFileSync(path.join(d, 'client.log'), 'utf8').split('\n').filter(Boolean).map(l => { try { return JSON.parse(l) } catch { return {} } })
    const won = events.find(e => e.event === 'holepunch.succeeded')
    const s = stats[name] ??= { runs: 0, direct: 0, ms: [], methods: {} }
    s.runs++
    let line = `${run} ${name}: relay`
    if (won != null) {
      const ms = Date.parse(won.time) - scenario.clientStartedMs
      s.direct++
      s.ms.push(ms)
      s.methods[won.method] = (s.methods[won.method] ?? 0) + 1
      line = `${run} ${name}: direct, ${won.method}, round ${won.attempt}, ${ms} ms to direct`
    }
    console.log(line)
  }
}
for (const [name, s] of Object.entries(stats)) {
  const sorted = s.ms.sort((a, b) => a - b)
  const median = sorted.length > 0 ? sorted[Math.floor(sorted.length / 2)] : '-'
  console.log(`${name}: direct ${s.direct}/${s.runs}; methods ${JSON.stringify(s.methods)}; time to direct median ${median} ms, range ${sorted[0] ?? '-'}-${sorted.at(-1) ?? '-'} ms`)
}
JS
