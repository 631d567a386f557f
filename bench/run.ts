#!/usr/bin/env node
/**
 * `npm run bench`: raw TCP, socat, ssh -L, a direct and a relayed punchgate tunnel,
 * side by side against one target process. Every measurement runs once per setup per
 * repeat, the setups interleaved (rotated each repeat) so that load from elsewhere on
 * the machine hits all of them alike; the table shows medians over the repeats.
 * `--smoke` runs tiny sizes (part of `npm test`): it fails on errors, never on speed.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { concurrent, connectTimes, latency, throughput } from './load.ts'
import { PeakMemory, cpuSeconds, machineCpu, memory } from './procstat.ts'
import { IDLE_MS, medians, percentile, table, targetLines, targets, type Samples } from './report.ts'
import { environment, SETUP_LABELS, startFloor, startFloorLibp2p, startPunchgate, startSocat, startSsh, startTarget, startVia, type Context, type Setup, type SetupName, type Transports } from './setups.ts'

const MB = 1e6
const MiB = 1024 * 1024
/** What `npm run bench` compares; the Node floor runs when `--only` names it. */
const DEFAULT: SetupName[] = ['raw', 'socat', 'ssh', 'direct', 'relay']
const ALL: SetupName[] = [...DEFAULT, 'floor-tcp', 'floor-tls', 'floor-mux', 'floor-libp2p', 'floor-libp2p-mux', 'via-socat', 'via-node', 'via-wan']

interface Sizes {
  throughputBytes: number
  latencyCount: number
  openCount: number
  concurrency: number
  concurrentBytes: number
  repeats: number
}

const FULL: Sizes = { throughputBytes: 512 * MiB, latencyCount: 2000, openCount: 200, concurrency: 1000, concurrentBytes: 4096, repeats: 3 }
const SMOKE: Sizes = { throughputBytes: 4 * MiB, latencyCount: 50, openCount: 10, concurrency: 100, concurrentBytes: 1024, repeats: 1 }

const { values: flags } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    only: { type: 'string' },
    steps: { type: 'string' },
    transports: { type: 'string', default: 'both' },
    size: { type: 'string' },
    repeats: { type: 'string' },
    concurrency: { type: 'string' },
    warmup: { type: 'string' },
    out: { type: 'string' },
    'cpu-prof': { type: 'boolean', default: false },
    'daemon-node-options': { type: 'string', default: '' },
    'daemon-env': { type: 'string', default: '' },
    'keep-logs': { type: 'boolean', default: false },
    circuit: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false }
  }
})

if (flags.help) {
  console.log(`usage: node bench/run.ts [--smoke] [--only raw,socat,ssh,direct,relay] [--transports tcp|quic|both]
       [--only ...,floor-tcp,floor-tls,floor-mux,floor-libp2p,floor-libp2p-mux]  also the Node and js-libp2p floors (bench/floor*.ts; not in the default set)
       [--only ...,via-socat,via-node]  also a direct tunnel through a bare relay (socat, a Node pipe): the relay's floor
       [--only ...,via-wan]  also a direct tunnel over a path with a 100 ms round trip (connection steps only)
       [--steps throughput1,throughput8,latency,open,concurrent,start]   and idle: a new connection after ${IDLE_MS / 1000} s of rest (not in the default set)
       [--size MiB] [--repeats N] [--concurrency N] [--warmup MiB (0: none)] [--out FILE.json] [--cpu-prof] [--daemon-node-options='--flag ...'] [--daemon-env='NAME=VALUE ...'] [--keep-logs]
       [--circuit]   the relayed tunnel over circuit relay v2, without a splice (docs/splice.md)`)
  process.exit(0)
}

const sizes: Sizes = { ...(flags.smoke ? SMOKE : FULL) }
/** How long a setup idles before its idle RSS is read: start-up work (DHT, identify) settles. */
const settleMs = flags.smoke ? 500 : 3000
/**
 * How long the cold-started private daemon idles before its RSS is read: V8's memory
 * reducer collects the start-up garbage about 10 s in (93 MB at 3 s, 89 MB at 10 s, 90-91
 * MB from 30 s to 2 min in one daemon's timeline; docs/performance.md).
 */
const privateSettleMs = flags.smoke ? 500 : 10_000
if (flags.size != null) sizes.throughputBytes = Number(flags.size) * MiB
if (flags.repeats != null) sizes.repeats = Number(flags.repeats)
if (flags.concurrency != null) sizes.concurrency = Number(flags.concurrency)
/**
 * One unrecorded stream of this many bytes through every setup before the first repeat:
 * the bench's own client and target are cold at first. Without it the first setup
 * measured got a third of its later rate (raw TCP 586-741 MB/s, then 2,095-2,555; three
 * runs, docs/performance.md).
 */
const warmupBytes = (flags.warmup != null ? Number(flags.warmup) : flags.smoke ? 0 : 64) * MiB
const transports = flags.transports as Transports
if (!['tcp', 'quic', 'both'].includes(transports)) throw new Error(`--transports: expected tcp, quic or both, got ${transports}`)
const wanted = flags.only != null ? flags.only.split(',') as SetupName[] : DEFAULT
for (const name of wanted) if (!ALL.includes(name)) throw new Error(`--only: unknown setup ${name}`)

const root = join(import.meta.dirname, '..')
const resultsDir = join(root, 'test-results', 'bench')
const logs = join(resultsDir, 'logs')
rmSync(logs, { recursive: true, force: true })
mkdirSync(logs, { recursive: true })
const dir = mkdtempSync(join(tmpdir(), 'punchgate-bench-'))
const ctx: Context = { dir, logs, targetPort: 0, transports, procs: [],
  cpuProfileDir: flags['cpu-prof'] ? join(resultsDir, 'profiles') : undefined,
  daemonNodeOptions: flags['daemon-node-options'].split(' ').filter(o => o !== ''),
  daemonEnv: environment(flags['daemon-env'].split(' ').filter(o => o !== '')),
  circuit: flags.circuit
}
if (ctx.cpuProfileDir != null) mkdirSync(ctx.cpuProfileDir, { recursive: true })

/** ssh and socat come from Debian; install them when missing and we may (CI, containers). */
function ensureTools (): string[] {
  const missing = [['socat', 'socat'], ['sshd', 'openssh-server'], ['ssh', 'openssh-client']]
    .filter(([tool]) => { try { execFileSync('sh', ['-c', `command -v ${tool} || test -x /usr/sbin/${tool}`]); return false } catch { return true } })
    .map(([, pkg]) => pkg as string)
  if (missing.length === 0 || process.getuid?.() !== 0) return missing
  console.error(`bench: installing ${missing.join(' ')} (apt-get)`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  try {
    execFileSync('apt-get', ['install', '-y', '-qq', ...missing], { env, stdio: 'ignore' })
  } catch {
    execFileSync('apt-get', ['update', '-qq'], { env, stdio: 'ignore' })
    execFileSync('apt-get', ['install', '-y', '-qq', ...missing], { env, stdio: 'ignore' })
  }
  return []
}

const failures: string[] = []
const setups: Setup[] = []
let stopping = false

async function cleanup (): Promise<void> {
  stopping = true
  await Promise.all(ctx.procs.map(async p => p.stop()))
  rmSync(dir, { recursive: true, force: true })
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => { void cleanup().then(() => process.exit(130)) })
}

async function startAll (): Promise<void> {
  const missing = ensureTools()
  ctx.targetPort = await startTarget(ctx)
  const starters: Array<Promise<Setup[]>> = []
  if (wanted.includes('raw')) starters.push(Promise.resolve([{ name: 'raw', port: ctx.targetPort, roots: [], detail: 'no middle process' }]))
  const optional = async (name: SetupName, pkg: string, start: () => Promise<Setup>): Promise<Setup[]> => {
    if (!wanted.includes(name)) return []
    if (missing.includes(pkg)) {
      console.error(`bench: skipping ${SETUP_LABELS[name]}: ${pkg} is not installed`)
      return []
    }
    return [await start()]
  }
  starters.push(optional('socat', 'socat', async () => startSocat(ctx)))
  starters.push(optional('ssh', 'openssh-server', async () => startSsh(ctx)))
  for (const floor of ['floor-tcp', 'floor-tls', 'floor-mux'] as const) if (wanted.includes(floor)) starters.push(startFloor(ctx, floor).then(s => [s]))
  for (const floor of ['floor-libp2p', 'floor-libp2p-mux'] as const) if (wanted.includes(floor)) starters.push(startFloorLibp2p(ctx, floor).then(s => [s]))
  starters.push(optional('via-socat', 'socat', async () => startVia(ctx, 'via-socat')))
  if (wanted.includes('via-node')) starters.push(startVia(ctx, 'via-node').then(s => [s]))
  if (wanted.includes('via-wan')) starters.push(startVia(ctx, 'via-wan').then(s => [s]))
  const tunnels = (['direct', 'relay'] as const).filter(n => wanted.includes(n))
  if (tunnels.length > 0) starters.push(startPunchgate(ctx, tunnels))
  for (const list of await Promise.all(starters)) setups.push(...list)
  setups.sort((a, b) => ALL.indexOf(a.name) - ALL.indexOf(b.name))
}

const samples: Samples = {}
const record = (setup: SetupName, key: string, value: number): void => {
  const metrics = samples[setup] ??= {}
  ;(metrics[key] ??= []).push(value)
}
const cpuTotals = new Map<SetupName, { seconds: number, machine: number, idle: number, bytes: number }>()
const peaks = new Map<SetupName, { totalBytes: number, largestBytes: number }>()
/** The largest private daemon's peak during one stream and N at once (issue 21's "under load"). */
const privatePeaks = new Map<SetupName, number>()
const PRIVATE_LOAD_STEPS = ['throughput 1', 'concurrent']

/** Runs one measurement for one setup, tracking its processes' peak memory and CPU. */
async function measure (setup: Setup, what: string, fn: () => Promise<void>, bytesMoved = 0): Promise<void> {
  const peak = new PeakMemory(setup.roots)
  // Only for a setup that takes both steps: the mux floors and via-wan take no stream step.
  const privatePeak = setup.daemons != null && takes(setup, 'throughput1') && PRIVATE_LOAD_STEPS.includes(what) ? new PeakMemory(setup.daemons) : undefined
  const cpuBefore = cpuSeconds(setup.roots)
  const machineBefore = machineCpu()
  const startedMs = Date.now()
  try {
    await fn()
    // A figure is only the setup's if its tunnel stayed on its path throughout.
    const changed = setup.changed?.(startedMs)
    if (changed != null) throw new Error(`the tunnel left its path: ${changed}`)
  } catch (err) {
    const message = `${SETUP_LABELS[setup.name]}: ${what}: ${(err as Error).message}`
    failures.push(message)
    console.error(`bench: ${message}`)
  } finally {
    const m = peak.stop()
    if (privatePeak != null) privatePeaks.set(setup.name, Math.max(privatePeaks.get(setup.name) ?? 0, privatePeak.stop().largestBytes))
    const before = peaks.get(setup.name) ?? { totalBytes: 0, largestBytes: 0 }
    peaks.set(setup.name, { totalBytes: Math.max(before.totalBytes, m.totalBytes), largestBytes: Math.max(before.largestBytes, m.largestBytes) })
    if (bytesMoved > 0) {
      const totals = cpuTotals.get(setup.name) ?? { seconds: 0, machine: 0, idle: 0, bytes: 0 }
      const machineAfter = machineCpu()
      cpuTotals.set(setup.name, {
        seconds: totals.seconds + cpuSeconds(setup.roots) - cpuBefore,
        machine: totals.machine + machineAfter.busy - machineBefore.busy,
        idle: totals.idle + (machineAfter.total - machineBefore.total) - (machineAfter.busy - machineBefore.busy),
        bytes: totals.bytes + bytesMoved
      })
    }
  }
}

type Step = (setup: Setup) => Promise<void>

const STEPS: Array<[string, string, Step]> = [
  ['throughput1', 'throughput, 1 stream', async setup => measure(setup, 'throughput 1', async () => {
    const t = await throughput(setup.port, sizes.throughputBytes, 1)
    record(setup.name, 'throughput1', t.bytes / MB / t.seconds)
  }, sizes.throughputBytes)],
  ['throughput8', 'throughput, 8 streams', async setup => measure(setup, 'throughput 8', async () => {
    const t = await throughput(setup.port, sizes.throughputBytes, 8)
    record(setup.name, 'throughput8', t.bytes / MB / t.seconds)
  }, sizes.throughputBytes)],
  ['latency', 'latency', async setup => measure(setup, 'latency', async () => {
    for (const [size, key] of [[1, 'latency1'], [4096, 'latency4k']] as const) {
      const ms = await latency(setup.port, size, sizes.latencyCount)
      record(setup.name, `${key}.p50`, percentile(ms, 50))
      record(setup.name, `${key}.p99`, percentile(ms, 99))
    }
  })],
  ['open', 'new connections', async setup => measure(setup, 'new connections', async () => {
    const cpuBefore = cpuSeconds(setup.roots)
    const ms = await connectTimes(setup.port, sizes.openCount)
    record(setup.name, 'open.p50', percentile(ms, 50))
    record(setup.name, 'open.p99', percentile(ms, 99))
    // The middle processes' CPU, all of them together, per connection: work, not waiting.
    if (setup.roots.length > 0) record(setup.name, 'open.cpu', (cpuSeconds(setup.roots) - cpuBefore) * 1000 / sizes.openCount)
  })],
  ['concurrent', `${sizes.concurrency} connections at once`, async setup => measure(setup, 'concurrent', async () => {
    const c = await concurrent(setup.port, sizes.concurrency, sizes.concurrentBytes, 60_000)
    record(setup.name, 'concurrent.seconds', c.seconds)
    record(setup.name, 'concurrent.errors', c.errors)
    if (c.errors > 0) throw new Error(`${c.errors} of ${c.connections} failed: ${c.failures.join(', ')}`)
  })],
  ['idle', `a new connection after ${IDLE_MS / 1000} s idle`, async setup => measure(setup, 'idle', async () => {
    // The main loop let every setup rest first. Three in a row: the first pays
    // for the wake-up, the next show how long it lasts.
    const [first, , third] = await connectTimes(setup.port, 3)
    record(setup.name, 'idle.first', first as number)
    record(setup.name, 'idle.third', third as number)
  })],
  ['start', 'first byte from start', async setup => {
    if (setup.coldStart == null) return
    const coldStart = setup.coldStart
    await measure(setup, 'first byte from start', async () => {
      const n = (samples[setup.name]?.['start.firstByte']?.length ?? 0) + 1
      const s = await coldStart(n, privateSettleMs)
      record(setup.name, 'start.firstByte', s.firstByteMs)
      if (s.idleRssBytes != null) record(setup.name, 'rss.private', s.idleRssBytes / MB)
    })
  }]
]
const BULK_STEPS = ['throughput1', 'throughput8']
/**
 * Steps a setup does not take: the floors' mux and the delaying path have no flow control
 * (bench/mini-mux.ts, bench/floor.ts), so no bulk; 1,000 at once moves 4 KiB each, which needs none.
 */
const SKIPS: Partial<Record<SetupName, string[]>> = { 'floor-mux': BULK_STEPS, 'floor-libp2p-mux': BULK_STEPS, 'via-wan': BULK_STEPS }
const takes = (setup: Setup, step: string): boolean => SKIPS[setup.name]?.includes(step) !== true
/** Steps run only when --steps names them: `idle` waits IDLE_MS per repeat. */
const OPT_IN_STEPS = ['idle']
const wantedSteps = flags.steps?.split(',') ?? STEPS.map(([key]) => key).filter(key => !OPT_IN_STEPS.includes(key))
for (const key of wantedSteps) if (!STEPS.some(([k]) => k === key)) throw new Error(`--steps: unknown step ${key}`)
const steps = STEPS.filter(([key]) => wantedSteps.includes(key))

async function main (): Promise<number> {
  const started = Date.now()
  await startAll()
  for (const s of setups) console.error(`bench: ${SETUP_LABELS[s.name]} on 127.0.0.1:${s.port} (${s.detail})`)

  // Idle: every setup up, nothing flowing; a moment for start-up work (DHT, identify) to settle.
  await sleep(settleMs)
  for (const s of setups) if (s.roots.length > 0) record(s.name, 'rss.idle', memory(s.roots).largestBytes / MB)

  if (warmupBytes > 0 && steps.some(([key]) => key.startsWith('throughput'))) {
    for (const setup of setups) {
      if (stopping) return 1
      if (!takes(setup, 'throughput1')) continue
      console.error(`bench: warm-up: ${SETUP_LABELS[setup.name]}`)
      await throughput(setup.port, warmupBytes, 1).catch((err: Error) => { console.error(`bench: warm-up: ${SETUP_LABELS[setup.name]}: ${err.message}`) })
    }
  }
  for (let r = 0; r < sizes.repeats; r++) {
    for (const [key, label, step] of steps) {
      // The whole bench rests once; each setup's connection then comes after the others' few ms.
      if (key === 'idle') {
        console.error(`bench: repeat ${r + 1}/${sizes.repeats}: idling ${IDLE_MS / 1000} s`)
        await sleep(IDLE_MS)
      }
      // Rotate the order each repeat so no setup always runs first (or last) in a burst.
      const order = setups.map((_, i) => setups[(i + r) % setups.length] as Setup)
      for (const setup of order) {
        if (stopping) return 1
        if (!takes(setup, key)) continue
        console.error(`bench: repeat ${r + 1}/${sizes.repeats}: ${label}: ${SETUP_LABELS[setup.name]}`)
        await step(setup)
      }
    }
  }
  // Idle again: what the load left behind (garbage not yet collected, allocator caches).
  await sleep(settleMs)
  for (const s of setups) if (s.roots.length > 0) record(s.name, 'rss.after', memory(s.roots).largestBytes / MB)
  for (const s of setups) {
    const cpu = cpuTotals.get(s.name)
    if (cpu != null && s.roots.length > 0) record(s.name, 'cpuPerGB', cpu.seconds / (cpu.bytes / 1e9))
    if (cpu != null) {
      // Every process on the machine, the bench's client and the target included: on cores
      // they all share, what one GB costs the machine is what sets the rate.
      record(s.name, 'cpuPerGB.machine', cpu.machine / (cpu.bytes / 1e9))
      record(s.name, 'idle.bulk', 100 * cpu.idle / (cpu.idle + cpu.machine))
    }
    const peak = peaks.get(s.name)
    if (peak != null && s.roots.length > 0) {
      record(s.name, 'rss.load', peak.largestBytes / MB)
      record(s.name, 'rss.loadTotal', peak.totalBytes / MB)
    }
    const privatePeak = privatePeaks.get(s.name)
    if (privatePeak != null) record(s.name, 'rss.loadPrivate', privatePeak / MB)
  }

  const m = medians(samples)
  const names = setups.map(s => s.name)
  const checks = targets(m, sizes.concurrency)
  console.log(table(m, names, sizes.concurrency))
  console.log('')
  console.log(targetLines(checks))
  const seconds = (Date.now() - started) / 1000
  const out = flags.out ?? join(resultsDir, flags.smoke ? 'smoke.json' : 'bench.json')
  writeFileSync(out, JSON.stringify({
    date: new Date().toISOString(),
    mode: flags.smoke ? 'smoke' : 'full',
    machine: { cpus: availableParallelism(), model: cpus()[0]?.model, loadavg: loadavg(), node: process.version },
    sizes,
    transports,
    setups: setups.map(s => ({ name: s.name, label: SETUP_LABELS[s.name], detail: s.detail })),
    medians: m,
    samples,
    targets: checks,
    failures,
    seconds
  }, null, 2) + '\n')
  console.log(`\nbench: ${seconds.toFixed(1)} s; JSON in ${out}; daemon logs in ${logs}`)
  const tunnelFailures = failures.filter(f => f.startsWith('punchgate'))
  if (failures.length > 0) console.error(`bench: ${failures.length} failure(s):\n  ${failures.join('\n  ')}`)
  return tunnelFailures.length > 0 ? 1 : 0
}

let code = 1
try {
  code = await main()
} catch (err) {
  console.error(`bench: ${(err as Error).message}`)
} finally {
  await cleanup()
  if (!flags['keep-logs'] && code === 0 && flags.smoke) rmSync(logs, { recursive: true, force: true })
}
process.exit(code)
