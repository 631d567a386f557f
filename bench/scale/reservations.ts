/**
 * Phase 1: private peers holding relay reservations on the public node, ramped in steps
 * (10 -> 100 -> 1,000). At each step: how many hold a slot, the public node's RSS (median
 * of samples over a quiet window) and its CPU while only holding them (libp2p pings
 * each connection every 10 s), and the CPU it spent taking the step's new reservations.
 */
import { cpuSeconds } from '../procstat.ts'
import type { PublicNode } from './public-node.ts'
import type { AddResult, CheckResult, WorkerRequest } from './reservations-worker.ts'
import { Worker } from './workers.ts'
import { watch } from './watch.ts'

const MB = 1e6

export interface ReservationOptions {
  steps: number[]
  workers: number
  /** Reservations in the handshake at once, all workers together (libp2p refuses past 10 pending inbound). */
  concurrency: number
  /** How long each step is watched once its reservations are held. */
  quietMs: number
}

export interface ReservationStep {
  peers: number
  held: number
  failed: number
  retries: number
  /** Connections to the relay lost during the step and its quiet window (each reserved again, as a daemon does). */
  lost: number
  /** The light peers' worst event-loop delay meanwhile: past 5 s, libp2p's ping monitor cuts connections. */
  workerMaxLagMs: number
  rssMB: number
  /** (RSS - RSS with none) / held, in kB. */
  kBPerReservation: number
  /** CPU used while holding them, as a share of one core. */
  idleCpuPercent: number
  /** CPU spent taking this step's new reservations, per reservation. */
  cpuMsPerReservation: number
  rampSeconds: number
  errors: string[]
}

export interface ReservationResult {
  flags: string[]
  baselineRssMB: number
  steps: ReservationStep[]
}

/** The public node's flags for `steps`: the operator's, as the default of 128 slots would stop the ramp. */
export function reservationFlags (options: Pick<ReservationOptions, 'steps'>): string[] {
  const most = Math.max(...options.steps)
  return most > 128 ? ['--relay-max-reservations', String(most)] : []
}

export async function runReservations (node: PublicNode, options: ReservationOptions): Promise<ReservationResult> {
  const workers = Array.from({ length: options.workers }, (_, i) => new Worker<WorkerRequest, AddResult | CheckResult>('reservations-worker.ts', `reservations-worker-${i}`))
  try {
    const baseline = await watch(node.proc.pid, options.quietMs)
    const steps: ReservationStep[] = []
    let made = 0
    for (const target of options.steps) {
      const count = target - made
      const perWorker = Math.ceil(count / workers.length)
      const cpu0 = cpuSeconds([node.proc.pid])
      const started = Date.now()
      const results = await Promise.all(workers.map(async (w, i) => {
        const from = made + i * perWorker
        const n = Math.max(0, Math.min(perWorker, target - from))
        if (n === 0) return undefined
        return w.ask({ type: 'add', relay: node.addr, from, count: n, concurrency: Math.max(1, Math.floor(options.concurrency / workers.length)) }) as Promise<AddResult>
      }))
      const rampSeconds = (Date.now() - started) / 1000
      const rampCpu = cpuSeconds([node.proc.pid]) - cpu0
      made = target
      const quiet = await watch(node.proc.pid, options.quietMs)
      // Held after the quiet window: a slot lost meanwhile does not count.
      const checks = await Promise.all(workers.map(async w => w.ask({ type: 'check', relay: node.addr }) as Promise<CheckResult>))
      const held = checks.reduce((sum, c) => sum + c.held, 0)
      const added = results.filter(r => r != null)
      steps.push({
        peers: target,
        held,
        failed: added.reduce((sum, r) => sum + r.failed, 0),
        retries: added.reduce((sum, r) => sum + r.retries, 0),
        lost: [...added, ...checks].reduce((sum, r) => sum + r.lost, 0),
        workerMaxLagMs: Math.max(...[...added, ...checks].map(r => r.maxLagMs)),
        rssMB: quiet.rssBytes / MB,
        kBPerReservation: held > 0 ? (quiet.rssBytes - baseline.rssBytes) / held / 1000 : NaN,
        idleCpuPercent: quiet.cpuSeconds / quiet.seconds * 100,
        cpuMsPerReservation: count > 0 ? rampCpu / count * 1000 : NaN,
        rampSeconds,
        errors: [...new Set(added.flatMap(r => r.errors))].slice(0, 5)
      })
    }
    return { flags: node.flags, baselineRssMB: baseline.rssBytes / MB, steps }
  } finally {
    await Promise.all(workers.map(async w => w.stop()))
  }
}
