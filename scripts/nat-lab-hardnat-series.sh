#!/usr/bin/env bash
# Hard-NAT success rate (docs/nat-traversal.md "Hard NATs"): runs the symmetric-vs-cone
# scenarios (udp-cone-symmetric, udp-symmetric-cone; SCENARIOS=udp-cone-symseq,udp-symseq-cone
# for port prediction) RUNS times each, 1 MiB echoed, holding each run up to 20 s for a direct
# connection, and prints one line per run (did the tunnel go direct, which method and round,
# time to direct from the client's start, the spraying side's winning port as an offset from
# the observed one) and a summary. Needs root.
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

# One line per scenario run: name, direct?, method, round, ms to direct from the client's start,
# and the spraying side's hit: the port that won, as an offset from the observed port it
# sprayed after (holepunch.birthday's target). A small offset is port prediction at work; the
# method is udp-birthday either way.
node - "$out" "$scenarios" <<'JS'
const fs = require('node:fs')
const path = require('node:path')
const [dir, scenarios] = process.argv.slice(2)
const runs = fs.readdirSync(dir).filter(d => /^run\d+$/.test(d)).sort((a, b) => a.slice(3) - b.slice(3))
const eventsOf = file => fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map(l => { try { return JSON.parse(l) } catch { return {} } }) : []
const portOf = s => Number(/[:/](\d+)(?:\/udx|$)/.exec(s ?? '')?.[1])
/** The spraying side's winning port minus the observed port it sprayed after, if a log shows both. */
function sprayOffset (d) {
  for (const log of ['client.log', 'workhorse.log']) {
    const events = eventsOf(path.join(d, log))
    const spray = events.find(e => e.event === 'holepunch.birthday' && e.role === 'spray')
    const won = events.find(e => e.event === 'holepunch.succeeded' && e.attempt === spray?.attempt)
    if (spray != null && won != null) return portOf(won.addr) - portOf(spray.target)
  }
  return undefined
}
const stats = {}
for (const run of runs) {
  for (const name of scenarios.split(',')) {
    const d = path.join(dir, run, name)
    if (!fs.existsSync(path.join(d, 'scenario.json'))) continue
    const scenario = JSON.parse(fs.readFileSync(path.join(d, 'scenario.json'), 'utf8'))
    const won = eventsOf(path.join(d, 'client.log')).find(e => e.event === 'holepunch.succeeded')
    const s = stats[name] ??= { runs: 0, direct: 0, ms: [], methods: {}, offsets: [] }
    s.runs++
    let line = `${run} ${name}: relay`
    if (won != null) {
      const ms = Date.parse(won.time) - scenario.clientStartedMs
      const offset = sprayOffset(d)
      s.direct++
      s.ms.push(ms)
      s.methods[won.method] = (s.methods[won.method] ?? 0) + 1
      if (Number.isFinite(offset)) s.offsets.push(offset)
      line = `${run} ${name}: direct, ${won.method}, round ${won.attempt}, ${ms} ms to direct, spray hit ${Number.isFinite(offset) ? (offset > 0 ? '+' : '') + offset : '-'}`
    }
    console.log(line)
  }
}
const median = sorted => sorted.length > 0 ? sorted[Math.floor(sorted.length / 2)] : '-'
for (const [name, s] of Object.entries(stats)) {
  const sorted = s.ms.sort((a, b) => a - b)
  const offsets = s.offsets.sort((a, b) => a - b)
  console.log(`${name}: direct ${s.direct}/${s.runs}; methods ${JSON.stringify(s.methods)}; time to direct median ${median(sorted)} ms, range ${sorted[0] ?? '-'}-${sorted.at(-1) ?? '-'} ms; spray hit (offset from the observed port) median ${median(offsets)}, range ${offsets[0] ?? '-'}..${offsets.at(-1) ?? '-'} (${offsets.filter(o => o >= 1 && o <= 512).length} of ${offsets.length} within +1..+512)`)
}
JS
