/**
 * Turns per-repeat samples into medians, the comparison table (ratios against raw TCP
 * and against ssh -L) and the issue's targets as pass/fail lines.
 */
import { SETUP_LABELS, type SetupName } from './setups.ts'

export interface MetricDef {
  key: string
  label: string
  unit: string
  /** Higher is better (throughput) or lower is better (latency, memory, CPU). */
  better: 'higher' | 'lower'
}

/**
 * How long the `idle` step (bench/run.ts) lets every process rest before a new connection
 * (a `git fetch` after a pause): not a multiple of the daemons' 30 s and 60 s timers, so the
 * connection does not land on their work.
 */
export const IDLE_MS = 47_000

export const METRICS: MetricDef[] = [
  { key: 'throughput1', label: 'throughput, 1 stream', unit: 'MB/s', better: 'higher' },
  { key: 'throughput8', label: 'throughput, 8 streams', unit: 'MB/s', better: 'higher' },
  { key: 'latency1.p50', label: 'latency 1 B, p50', unit: 'ms', better: 'lower' },
  { key: 'latency1.p99', label: 'latency 1 B, p99', unit: 'ms', better: 'lower' },
  { key: 'latency4k.p50', label: 'latency 4 KiB, p50', unit: 'ms', better: 'lower' },
  { key: 'latency4k.p99', label: 'latency 4 KiB, p99', unit: 'ms', better: 'lower' },
  { key: 'open.p50', label: 'new connection, p50', unit: 'ms', better: 'lower' },
  { key: 'open.p99', label: 'new connection, p99', unit: 'ms', better: 'lower' },
  { key: 'open.cpu', label: 'CPU per new connection', unit: 'ms', better: 'lower' },
  { key: 'idle.first', label: `new connection after ${IDLE_MS / 1000} s idle`, unit: 'ms', better: 'lower' },
  { key: 'idle.third', label: `the third after ${IDLE_MS / 1000} s idle`, unit: 'ms', better: 'lower' },
  { key: 'concurrent.seconds', label: 'N at once, all echoed', unit: 's', better: 'lower' },
  { key: 'concurrent.errors', label: 'N at once, errors', unit: '', better: 'lower' },
  { key: 'start.firstByte', label: 'first byte from start', unit: 'ms', better: 'lower' },
  { key: 'cpuPerGB', label: 'CPU per GB moved', unit: 's/GB', better: 'lower' },
  { key: 'cpuPerGB.machine', label: 'CPU per GB, whole machine', unit: 's/GB', better: 'lower' },
  { key: 'idle.bulk', label: 'machine idle, bulk steps', unit: '%', better: 'lower' },
  { key: 'rss.idle', label: 'RSS idle, largest process', unit: 'MB', better: 'lower' },
  { key: 'rss.load', label: 'RSS under load, largest', unit: 'MB', better: 'lower' },
  { key: 'rss.loadTotal', label: 'RSS under load, all procs', unit: 'MB', better: 'lower' },
  { key: 'rss.after', label: 'RSS idle after load, largest', unit: 'MB', better: 'lower' },
  { key: 'rss.private', label: 'RSS idle, private daemon, 2 tunnels', unit: 'MB', better: 'lower' },
  { key: 'rss.loadPrivate', label: 'RSS 1 stream + N at once, private', unit: 'MB', better: 'lower' }
]

/** Samples per setup and metric key: one value per repeat. */
export type Samples = Partial<Record<SetupName, Record<string, number[]>>>

export function median (values: number[]): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] as number : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

export function percentile (values: number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1)] as number
}

export type Medians = Partial<Record<SetupName, Record<string, number>>>

export function medians (samples: Samples): Medians {
  const out: Medians = {}
  for (const [setup, metrics] of Object.entries(samples) as Array<[SetupName, Record<string, number[]>]>) {
    out[setup] = Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, median(v)]))
  }
  return out
}

function format (value: number | undefined): string {
  if (value == null || Number.isNaN(value)) return '-'
  if (value === 0) return '0'
  if (Math.abs(value) >= 100) return value.toFixed(0)
  if (Math.abs(value) >= 10) return value.toFixed(1)
  if (Math.abs(value) >= 1) return value.toFixed(2)
  return value.toFixed(3)
}

function ratio (value: number | undefined, base: number | undefined): string {
  if (value == null || base == null || Number.isNaN(value) || Number.isNaN(base) || base === 0) return '-'
  return `${(value / base).toFixed(2)}x`
}

export function table (m: Medians, setups: SetupName[], concurrency: number): string {
  const rows: string[][] = [['metric', 'setup', 'value', 'unit', 'vs raw', 'vs ssh -L']]
  for (const def of METRICS) {
    const label = def.label.replace('N at once', `${concurrency} at once`)
    let first = true
    for (const setup of setups) {
      const value = m[setup]?.[def.key]
      if (value == null) continue
      rows.push([
        first ? label : '',
        SETUP_LABELS[setup],
        format(value),
        def.unit,
        ratio(value, m.raw?.[def.key]),
        ratio(value, m.ssh?.[def.key])
      ])
      first = false
    }
  }
  const widths = rows[0]?.map((_, col) => Math.max(...rows.map(r => (r[col] ?? '').length))) ?? []
  return rows.map(r => r.map((cell, col) => col >= 2 && col !== 3 ? cell.padStart(widths[col] ?? 0) : cell.padEnd(widths[col] ?? 0)).join('  ').trimEnd()).join('\n')
}

export interface Target {
  name: string
  value: string
  /** `undefined`: a needed figure is missing; 'info': measured, no target. */
  pass: boolean | undefined | 'info'
}

/** The issue's targets, from one run's medians. `undefined` when a needed number is missing. */
export function targets (m: Medians, concurrency: number): Target[] {
  const get = (s: SetupName, k: string): number | undefined => {
    const v = m[s]?.[k]
    return v == null || Number.isNaN(v) ? undefined : v
  }
  const out: Target[] = []
  const check = (name: string, value: number | undefined, pass: (v: number) => boolean, show: (v: number) => string): void => {
    out.push(value == null ? { name, value: '-', pass: undefined } : { name, value: show(value), pass: pass(value) })
  }
  const over = (a: number | undefined, b: number | undefined): number | undefined => a == null || b == null ? undefined : a / b
  const minus = (a: number | undefined, b: number | undefined): number | undefined => a == null || b == null ? undefined : a - b
  const ms = (v: number): string => `${v < 1 ? v.toFixed(3) : v.toFixed(2)} ms`
  const vsSsh = (s: SetupName, k: string, times: number): void => {
    const mine = get(s, k)
    const ssh = get('ssh', k)
    const name = `${s}: ${k.startsWith('open') ? 'new connection' : 'latency 1 B'} ${k.endsWith('p50') ? 'p50' : 'p99'} <= ${times === 1 ? '' : `${times}x `}ssh -L's`
    check(name, mine == null || ssh == null ? undefined : mine, v => v <= times * (ssh as number), v => `${ms(v)} vs ${ms(ssh as number)}`)
  }
  // Issue 21.
  check('direct throughput (1 stream) >= 1.5x ssh -L', over(get('direct', 'throughput1'), get('ssh', 'throughput1')), v => v >= 1.5, v => `${v.toFixed(2)}x`)
  check('relay throughput (1 stream) >= 0.9x direct', over(get('relay', 'throughput1'), get('direct', 'throughput1')), v => v >= 0.9, v => `${v.toFixed(2)}x`)
  for (const s of ['direct', 'relay'] as const) {
    vsSsh(s, 'open.p50', 1)
    vsSsh(s, 'open.p99', 2)
    vsSsh(s, 'latency1.p99', 2)
    check(`${s}: idle RSS of a private daemon holding two tunnels <= 60 MB`, get(s, 'rss.private'), v => v <= 60, v => `${v.toFixed(1)} MB`)
    check(`${s}: private daemon RSS under load (1 stream, ${concurrency} at once) <= 120 MB`, get(s, 'rss.loadPrivate'), v => v <= 120, v => `${v.toFixed(0)} MB`)
  }
  // Issue 5's that no target above covers.
  check('direct added p50 latency (1 B) <= 0.2 ms', minus(get('direct', 'latency1.p50'), get('raw', 'latency1.p50')), v => v <= 0.2, v => `${v.toFixed(3)} ms`)
  check('direct added p50 latency (4 KiB) <= 0.2 ms', minus(get('direct', 'latency4k.p50'), get('raw', 'latency4k.p50')), v => v <= 0.2, v => `${v.toFixed(3)} ms`)
  for (const s of ['direct', 'relay'] as const) {
    check(`${s}: ${concurrency} connections at once, zero errors`, get(s, 'concurrent.errors'), v => v === 0, v => `${v} errors`)
  }
  // Measured, no target: a tunnel by name, from the daemon's start (ssh -L: from ssh's).
  for (const s of ['direct', 'relay'] as const) {
    const v = get(s, 'start.firstByte')
    const ssh = get('ssh', 'start.firstByte')
    out.push({ name: `${s}: first byte from daemon start, by name`, value: v == null ? '-' : `${v.toFixed(0)} ms${ssh == null ? '' : ` (ssh -L ${ssh.toFixed(0)} ms)`}`, pass: 'info' })
  }
  return out
}

export function targetLines (list: Target[]): string {
  return list.map(t => `${t.pass === undefined ? 'n/a ' : t.pass === 'info' ? 'INFO' : t.pass ? 'PASS' : 'FAIL'}  ${t.name}: ${t.value}`).join('\n')
}
