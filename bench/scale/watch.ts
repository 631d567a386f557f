/** The public node's memory and CPU over a window, read from /proc (bench/procstat.ts). */
import { setTimeout as sleep } from 'node:timers/promises'
import { cpuSeconds, memory } from '../procstat.ts'
import { median } from '../report.ts'

export interface Watched {
  /** Median of RSS samples every 500 ms. */
  rssBytes: number
  peakRssBytes: number
  /** CPU seconds used in the window. */
  cpuSeconds: number
  seconds: number
}

/** Samples `pid` until `until` settles (or for `ms` when given a number). */
export async function watch (pid: number, until: number | Promise<unknown>): Promise<Watched> {
  const samples: number[] = []
  const cpu0 = cpuSeconds([pid])
  const started = Date.now()
  let done = false
  const end = typeof until === 'number' ? sleep(until) : until
  void end.finally(() => { done = true }).catch(() => {})
  while (!done) {
    samples.push(memory([pid]).totalBytes)
    await Promise.race([sleep(500), end.catch(() => {})])
  }
  samples.push(memory([pid]).totalBytes)
  return { rssBytes: median(samples), peakRssBytes: Math.max(...samples), cpuSeconds: cpuSeconds([pid]) - cpu0, seconds: (Date.now() - started) / 1000 }
}
