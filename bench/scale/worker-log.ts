/**
 * For the nodes a worker runs: a logger that appends their records (info and up, with the
 * node's index) to one JSON-lines file, written synchronously like the daemon's; and the
 * worker's event-loop delay, which says whether the bench's own side kept up.
 */
import { appendFileSync } from 'node:fs'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import type { Logger } from '@punchgate/node'

export function fileLogger (file: string, node: number): Logger {
  const write = (level: number) => (obj: Record<string, unknown>, msg?: string): void => {
    appendFileSync(file, JSON.stringify({ level, time: new Date().toISOString(), node, ...obj, ...(msg != null ? { msg } : {}) }) + '\n')
  }
  return { debug: () => {}, info: write(30), warn: write(40), error: write(50) }
}

/** The largest event-loop delay since the last call, in ms. */
export function lagMonitor (): () => number {
  const lag = monitorEventLoopDelay({ resolution: 20 })
  lag.enable()
  return () => {
    const max = lag.max / 1e6
    lag.reset()
    return max
  }
}
