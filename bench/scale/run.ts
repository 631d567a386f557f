#!/usr/bin/env node
/**
 * `npm run bench:scale`: one public node (the daemon bundle, run as users run it) serving
 * many peers on loopback, to size a bootstrap (docs/performance.md, "Sizing a bootstrap"):
 *   reservations  private peers holding relay slots, ramped 10 -> 100 -> 1,000
 *   tunnels       100 relayed tunnels at once, 1 MiB/s each, spliced through it
 *   mesh          a 50-node mesh publishing and looking up service names (DHT)
 * Prints a table and writes test-results/bench/scale-<time>.json. `--quick` is small enough
 * for CI; like the full run it fails (exit 1) only on errors, never on figures.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { startPublicNode, type PublicNode } from './public-node.ts'
import { reservationFlags, runReservations, type ReservationOptions, type ReservationResult } from './reservations.ts'
import { runTunnels, tunnelFlags, type TunnelOptions, type TunnelResult } from './tunnels.ts'
import { runMesh, type MeshOptions, type MeshResult } from './mesh.ts'

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    steps: { type: 'string' },
    workers: { type: 'string' },
    tunnels: { type: 'string' },
    seconds: { type: 'string' },
    nodes: { type: 'string' },
    'mesh-public': { type: 'string' },
    lookups: { type: 'string' },
    'keep-logs': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false }
  }
})

const PHASES = ['reservations', 'tunnels', 'mesh'] as const
type Phase = typeof PHASES[number]

if (flags.help) {
  console.log(`usage: node bench/scale/run.ts [--quick] [--only ${PHASES.join(',')}]
       [--steps 10,100,1000]   reservations held at each step
       [--workers N]           worker processes holding the light peers
       [--tunnels 10,50,100]   relayed tunnels at once at each step, 1 MiB/s each
       [--seconds N]           how long the tunnels move bytes
       [--nodes N]             mesh nodes, the public node included
       [--mesh-public N]       of the other mesh nodes, how many are public (DHT servers) too
       [--lookups N]           names each mesh node looks up
       [--keep-logs]           keep the daemons' logs (test-results/bench/scale-logs) after a clean run`)
  process.exit(0)
}

const quick = flags.quick
const reservations: ReservationOptions = {
  steps: (flags.steps ?? (quick ? '10,20' : '10,100,1000')).split(',').map(Number),
  workers: Number(flags.workers ?? (quick ? 1 : 4)),
  concurrency: 8,
  quietMs: quick ? 1_000 : 20_000
}
const tunnels: TunnelOptions = {
  steps: (flags.tunnels ?? (quick ? '3' : '10,50,100')).split(',').map(Number),
  bytesPerSecond: 1024 * 1024,
  seconds: Number(flags.seconds ?? (quick ? 3 : 30)),
  workers: Number(flags.workers ?? (quick ? 1 : 4)),
  startGapMs: 500,
  quietMs: quick ? 1_000 : 10_000
}
const mesh: MeshOptions = {
  nodes: Number(flags.nodes ?? (quick ? 6 : 50)),
  publicNodes: Number(flags['mesh-public'] ?? 0),
  lookups: Number(flags.lookups ?? (quick ? 2 : 10)),
  workers: Number(flags.workers ?? (quick ? 1 : 4)),
  concurrency: 4,
  startGapMs: 250
}
const phases = (flags.only?.split(',') ?? [...PHASES]) as Phase[]
for (const p of phases) if (!PHASES.includes(p)) throw new Error(`--only: unknown phase ${p}`)

const root = join(import.meta.dirname, '..', '..')
const resultsDir = join(root, 'test-results', 'bench')
const logs = join(resultsDir, 'scale-logs')
rmSync(logs, { recursive: true, force: true })
mkdirSync(logs, { recursive: true })
const dir = mkdtempSync(join(tmpdir(), 'punchgate-scale-'))

function uptime (): string {
  try {
    return execFileSync('uptime', { encoding: 'utf8' }).trim()
  } catch {
    return `load average: ${loadavg().map(l => l.toFixed(2)).join(', ')}`
  }
}

function fixed (value: number, digits = 1): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '-'
}

function printTable (head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const line = (cells: string[]): string => '| ' + cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ') + ' |'
  console.log(line(head))
  console.log('|' + widths.map(w => '-'.repeat(w + 2)).join('|') + '|')
  for (const row of rows) console.log(line(row))
}

function reservationErrors (r: ReservationResult): string[] {
  return r.steps.filter(s => s.held < s.peers).map(s => `reservations: ${s.held} of ${s.peers} held (${s.failed} failed${s.errors.length > 0 ? `: ${s.errors[0]?.split('\n')[0] ?? ''}` : ''})`)
}

const started = new Date()
const loadBefore = uptime()
console.log(`bench:scale${quick ? ' --quick' : ''}: ${cpus().length} cores; ${loadBefore}`)
const results: { reservations?: ReservationResult, tunnels?: TunnelResult, mesh?: MeshResult } = {}
const errors: string[] = []
const seconds: Partial<Record<Phase, number>> = {}

/** The public node's operator flags: what each phase needs, or (one node for all) their sum. */
function flagsFor (which: Phase[]): string[] {
  if (which.length === 1 && which[0] === 'reservations') return reservationFlags(reservations)
  if (which.length === 1 && which[0] === 'tunnels') return tunnelFlags(tunnels)
  if (which.length === 1) return []
  const slots = Math.max(...reservations.steps) + 2 * Math.max(...tunnels.steps) + mesh.nodes + 16
  return slots > 128 ? ['--relay-max-reservations', String(slots)] : []
}

const describe: Record<Phase, () => string> = {
  reservations: () => `reservations: steps ${reservations.steps.join(' -> ')}, ${reservations.workers} worker process(es)`,
  tunnels: () => `tunnels: steps ${tunnels.steps.join(' -> ')} relayed tunnels, ${tunnels.bytesPerSecond / 1024 / 1024} MiB/s each for ${tunnels.seconds} s, ${tunnels.workers} worker process(es)`,
  mesh: () => `mesh: ${mesh.nodes} nodes (the public node${mesh.publicNodes > 0 ? ` and ${mesh.publicNodes} more public` : ''}; the rest private), ${mesh.lookups} lookups each`
}

/** Runs one phase against `node` and keeps its result and errors. */
async function runPhase (name: Phase, node: PublicNode): Promise<void> {
  const t0 = Date.now()
  try {
    if (name === 'reservations') {
      const r = results.reservations = await runReservations(node, reservations)
      errors.push(...reservationErrors(r))
    } else if (name === 'tunnels') {
      const t = results.tunnels = await runTunnels(node, logs, tunnels)
      errors.push(...t.steps.flatMap(s => s.errors.map(e => `tunnels (${s.tunnels}): ${e}`)))
    } else {
      const m = results.mesh = await runMesh(node, mesh)
      errors.push(...m.errors.map(e => `mesh: ${e}`))
    }
  } catch (err) {
    errors.push(`${name}: ${(err as Error).stack ?? String(err)}`)
  } finally {
    seconds[name] = (Date.now() - t0) / 1000
  }
}

function print (name: Phase): void {
  console.log(`\n${describe[name]()} (${fixed(seconds[name] ?? NaN)} s)`)
  if (name === 'reservations' && results.reservations != null) {
    const r = results.reservations
    console.log(`public node flags: ${r.flags.join(' ') || '(defaults)'}; RSS with no reservation ${fixed(r.baselineRssMB)} MB`)
    printTable(
      ['peers', 'held', 'retries', 'lost', 'worker lag ms', 'RSS MB', 'kB per reservation', 'CPU holding, % of a core', 'CPU per new reservation, ms', 'ramp s'],
      r.steps.map(s => [String(s.peers), String(s.held), String(s.retries), String(s.lost), fixed(s.workerMaxLagMs, 0), fixed(s.rssMB), fixed(s.kBPerReservation), fixed(s.idleCpuPercent, 2), fixed(s.cpuMsPerReservation, 2), fixed(s.rampSeconds)])
    )
  }
  if (name === 'tunnels' && results.tunnels != null) {
    const t = results.tunnels
    console.log(`public node flags: ${t.flags.join(' ') || '(defaults)'}`)
    printTable(
      ['tunnels', 'live', 'start s', 'RSS idle MB', 'CPU idle %', 'RSS load MB (peak)', 'CPU load %', 'relayed MB/s', 'CPU % per MB/s (less idle)', 'per tunnel MB/s p50 / min', 'worker lag ms', 'errors'],
      t.steps.map(s => [String(s.tunnels), String(s.ready), fixed(s.startSeconds), fixed(s.idle.rssMB), fixed(s.idle.cpuPercent), `${fixed(s.load.rssMB)} (${fixed(s.load.peakRssMB)})`, fixed(s.load.cpuPercent),
        fixed(s.relayedMBps), `${fixed(s.cpuPercentPerMBps, 2)} (${fixed(s.marginalCpuPercentPerMBps, 2)})`,
        `${fixed(s.perTunnelMBps.p50, 3)} / ${fixed(s.perTunnelMBps.min, 3)}`, fixed(s.workerMaxLagMs, 0), String(s.errors.length)])
    )
  }
  if (name === 'mesh' && results.mesh != null) {
    const m = results.mesh
    printTable(
      ['nodes', 'publishes', 'publish p50 / p99 ms', 'lookups', 'lookup p50 / p99 / max ms', 'public node RSS MB', 'CPU %', 'errors'],
      [[String(m.nodes), String(m.publish.count), `${fixed(m.publish.p50)} / ${fixed(m.publish.p99)}`, String(m.lookup.count),
        `${fixed(m.lookup.p50)} / ${fixed(m.lookup.p99)} / ${fixed(m.lookup.max)}`, fixed(m.rssMB), fixed(m.cpuPercent), String(m.errors.length)]]
    )
  }
}

if (quick) {
  // One public node and the phases at once: --quick looks for errors, and its figures mix the phases.
  const node = await startPublicNode(dir, logs, 'public', flagsFor(phases))
  try {
    await Promise.all(phases.map(async name => runPhase(name, node)))
  } finally {
    await node.proc.stop()
  }
  console.log('\n--quick: the phases ran at once on one public node; their figures mix, only errors count')
  for (const name of phases) print(name)
} else {
  // A fresh public node per phase, one phase at a time: each figure is that phase's alone.
  for (const name of phases) {
    try {
      const node = await startPublicNode(dir, logs, `public-${name}`, flagsFor([name]))
      try {
        await runPhase(name, node)
      } finally {
        await node.proc.stop()
      }
    } catch (err) {
      errors.push(`${name}: ${(err as Error).message}`)
    }
    print(name)
  }
}

const loadAfter = uptime()
console.log(`\n${loadAfter}`)
mkdirSync(resultsDir, { recursive: true })
const out = join(resultsDir, `scale-${started.toISOString().replace(/[:.]/g, '-')}.json`)
writeFileSync(out, JSON.stringify({
  started: started.toISOString(),
  quick,
  cores: cpus().length,
  cpu: cpus()[0]?.model,
  load: { before: loadBefore, after: loadAfter },
  options: { reservations, tunnels, mesh },
  seconds,
  results,
  errors
}, null, 2) + '\n')
console.log(`wrote ${out}`)
rmSync(dir, { recursive: true, force: true })
if (errors.length > 0) {
  console.error(`\nFAIL: ${errors.length} error(s); logs in ${logs}`)
  for (const e of errors) console.error(`  ${e}`)
  process.exit(1)
}
if (!flags['keep-logs']) rmSync(logs, { recursive: true, force: true })
console.log('PASS: no errors')
