/**
 * Graceful stop: take no new tunnel connections, give the open ones (both ends: local
 * listeners and connections served to peers) a bounded time to finish, and report what
 * had to be cut. The caller closes listeners and the swarm afterwards, which cuts the rest.
 */
import type { NodeEvents } from './events.ts'
import type { InFlight } from './in-flight.ts'

/** What draining needs of a tunnel listener. */
export interface Drainable {
  readonly connections: number
  stopAccepting: () => void
  idle: () => Promise<void>
}

export interface DrainInit {
  listeners: Drainable[]
  /** Connections this node serves to peers (the expose side). */
  served: InFlight
  /** Refuses new incoming tunnel streams. */
  stopServing: () => Promise<void>
  events: NodeEvents
  timeoutMs: number
}

export async function drainConnections (init: DrainInit): Promise<void> {
  const { listeners, served, events, timeoutMs } = init
  for (const listener of listeners) listener.stopAccepting()
  await init.stopServing().catch(() => {})
  const open = (): number => served.size + listeners.reduce((sum, l) => sum + l.connections, 0)
  const connections = open()
  if (connections === 0) return

  events.emitEvent('node.draining', { connections, timeoutMs })
  const started = Date.now()
  let timer: ReturnType<typeof setTimeout> | undefined
  await Promise.race([
    Promise.all([served.idle(), ...listeners.map(async l => l.idle())]),
    new Promise<void>(resolve => { timer = setTimeout(resolve, timeoutMs) })
  ])
  clearTimeout(timer)
  events.emitEvent('node.drained', { ms: Date.now() - started, cut: open() })
}
