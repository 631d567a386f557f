#!/usr/bin/env node
/**
 * `npm run bench:scale`: one public node (the daemon bundle, run as users run it) serving
 * many peers on loopback, to size a bootstrap (docs/performance.md, "Sizing a bootstrap"):
 *   reservations  private peers holding relay slots, ramped 10 -> 100 -> 1,000
 * Prints a table and writes test-results/bench/scale-<time>.json. `--quick` is small enough
 * for CI; like the full run it fails (exit 1) only on errors, never on figures.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { runReservations, type ReservationOptions, type ReservationResult } from './reservations.ts'

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    steps: { type: 'string' },
    workers: { type: 'string' },
    'keep-logs': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false }
  }
})

const PHASES = ['reservations'] as const
type Phase = typeof PHASES[number]

if (flags.help) {
  console.log(`usage: node bench/scale/run.ts [--quick] [--only ${PHASES.join(',')}]
       [--steps 10,100,1000]   reservations held at each step
       [--workers N]           worker processes holding the light peers
       [--keep-logs]           keep the daemons' logs (test-results/bench/scale-logs) after a clean run`)
  process.exit(0)
}

const quick = flags.quick
const reservations: ReservationOptions = {
  steps: (flags.steps ?? (quick ? '10,50' : '10,100,1000')).split(',').map(Number),
  workers: Number(flags.workers ?? (quick ? 1 : 4)),
  concurrency: 8,
  quietMs: quick ? 2_000 : 20_000
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
const results: { reservations?: ReservationResult } = {}
const errors: string[] = []
try {
  if (phases.includes('reservations')) {
    console.log(`\nreservations: steps ${reservations.steps.join(' -> ')}, ${reservations.workers} worker process(es)`)
    const r = await runReservations(dir, logs, reservations)
    results.reservations = r
    console.log(`public node flags: ${r.flags.join(' ') || '(defaults)'}; RSS with no reservation ${fixed(r.baselineRssMB)} MB`)
    printTable(
      ['peers', 'held', 'retries', 'RSS MB', 'kB per reservation', 'CPU holding, % of a core', 'CPU per new reservation, ms', 'ramp s'],
      r.steps.map(s => [String(s.peers), String(s.held), String(s.retries), fixed(s.rssMB), fixed(s.kBPerReservation), fixed(s.idleCpuPercent, 2), fixed(s.cpuMsPerReservation, 2), fixed(s.rampSeconds)])
    )
    errors.push(...reservationErrors(r))
  }
} catch (err) {
  errors.push((err as Error).stack ?? String(err))
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
  options: { reservations },
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
