/**
 * Phase 2: relayed tunnels at once, each moving a steady rate (1 MiB/s) through the public
 * node, spliced there as daemons do it (docs/splice.md). Both ends are real Punchgate nodes
 * in worker processes (tunnels-worker.ts). Measured on the public node: RSS and CPU with
 * the tunnels idle, then while they move bytes; the bytes its splicer copied; CPU per
 * relayed MB/s; and at the ends, the throughput each tunnel achieved and any error.
 */
import type { PublicNode } from './public-node.ts'
import { daemonStatus } from './status.ts'
import type { PumpResult, StartResult, TunnelsRequest } from './tunnels-worker.ts'
import { Worker } from './workers.ts'
import { watch } from './watch.ts'
import { join } from 'node:path'
import { percentile } from '../report.ts'

const MB = 1e6

export interface TunnelOptions {
  /** Tunnels at once at each step: the pairs of one step stay for the next. */
  steps: number[]
  bytesPerSecond: number
  seconds: number
  workers: number
  /** Between two pairs' starts, all workers together: libp2p takes 5 new connections a second from one IP. */
  startGapMs: number
  quietMs: number
}

export interface TunnelStep {
  tunnels: number
  ready: number
  startSeconds: number
  idle: { rssMB: number, cpuPercent: number }
  load: { rssMB: number, peakRssMB: number, cpuPercent: number, seconds: number }
  /** What the public node's splicer copied during the load, both directions, per second. */
  relayedMBps: number
  /** Share of one core per relayed MB/s (the load's CPU, idle CPU included). */
  cpuPercentPerMBps: number
  /** The same, less the idle CPU: what the bytes themselves cost. */
  marginalCpuPercentPerMBps: number
  /** Per tunnel, what its target received per second. */
  perTunnelMBps: { p50: number, min: number, sum: number }
  sentMB: number
  receivedMB: number
  /** The workers' largest event-loop delay during the pump: the bench's own side keeping up, or not. */
  workerMaxLagMs: number
  errors: string[]
}

export interface TunnelResult {
  flags: string[]
  steps: TunnelStep[]
}

/**
 * The public node's flags: both ends of each tunnel hold a slot (a private node reserves on
 * its bootstrap), and each splice pair counts against the same limit.
 */
export function tunnelFlags (options: Pick<TunnelOptions, 'steps'>): string[] {
  const slots = 2 * Math.max(...options.steps) + 16
  return slots > 128 ? ['--relay-max-reservations', String(slots)] : []
}

export async function runTunnels (node: PublicNode, logs: string, options: TunnelOptions): Promise<TunnelResult> {
  const socket = `${node.key}.sock`
  const workers = Array.from({ length: options.workers }, (_, i) => new Worker<TunnelsRequest, StartResult | PumpResult>('tunnels-worker.ts', `tunnels-worker-${i}`))
  const steps: TunnelStep[] = []
  try {
    let made = 0
    let ready = 0
    for (const target of options.steps) {
      const errors: string[] = []
      const count = target - made
      const per = Math.ceil(count / workers.length)
      const startedAt = Date.now()
      const started = await Promise.all(workers.map(async (w, i) => {
        const from = made + i * per
        const n = Math.max(0, Math.min(per, target - from))
        return w.ask({
          type: 'start', relay: node.addr, from, count: n, startGapMs: options.startGapMs * workers.length, offsetMs: options.startGapMs * i, log: join(logs, `tunnels-worker-${i}.log`)
        }) as Promise<StartResult>
      }))
      made = target
      const startSeconds = (Date.now() - startedAt) / 1000
      ready = started.reduce((sum, s) => sum + s.ready, 0)
      errors.push(...started.flatMap(s => s.errors))
      if (ready < target) errors.push(`${ready} of ${target} tunnels went live over a splice`)

      const idle = await watch(node.proc.pid, options.quietMs)
      const before = await daemonStatus(socket)
      const pumping = Promise.all(workers.map(async w => w.ask({ type: 'pump', seconds: options.seconds, bytesPerSecond: options.bytesPerSecond }) as Promise<PumpResult>))
      const load = await watch(node.proc.pid, pumping)
      const pumped = await pumping
      const after = await daemonStatus(socket)
      errors.push(...pumped.flatMap(p => p.errors))

      const relayedMBps = ((after.splice?.copied ?? 0) - (before.splice?.copied ?? 0)) / MB / load.seconds
      const cpuPercent = load.cpuSeconds / load.seconds * 100
      const idleCpuPercent = idle.cpuSeconds / idle.seconds * 100
      const perTunnel = pumped.flatMap(p => p.perTunnel).map(b => b / MB)
      steps.push({
        tunnels: target,
        ready,
        startSeconds,
        idle: { rssMB: idle.rssBytes / MB, cpuPercent: idleCpuPercent },
        load: { rssMB: load.rssBytes / MB, peakRssMB: load.peakRssBytes / MB, cpuPercent, seconds: load.seconds },
        relayedMBps,
        cpuPercentPerMBps: cpuPercent / relayedMBps,
        marginalCpuPercentPerMBps: (cpuPercent - idleCpuPercent) / relayedMBps,
        perTunnelMBps: { p50: percentile(perTunnel, 50), min: Math.min(...perTunnel), sum: perTunnel.reduce((a, b) => a + b, 0) },
        sentMB: pumped.reduce((sum, p) => sum + p.sent, 0) / MB,
        receivedMB: pumped.reduce((sum, p) => sum + p.received, 0) / MB,
        workerMaxLagMs: Math.max(...pumped.map(p => p.maxLagMs)),
        errors
      })
    }
    return { flags: node.flags, steps }
  } finally {
    await Promise.all(workers.map(async w => w.stop()))
  }
}
