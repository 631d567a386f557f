/**
 * The local end of a tunnel, TCP or UDP: what the runner needs from either, and the
 * one place that picks the kind from the spec.
 */
import type { TunnelSpec } from '../config.ts'
import type { NodeEvents } from '../events.ts'
import { TunnelListener, type ListenerTotals, type TunnelRoute } from './listener.ts'
import { UdpTunnelListener } from './udp-listener.ts'

export type { ListenerTotals } from './listener.ts'

export interface LocalListener {
  /** The bound address (`/udp` appended for UDP). */
  readonly bind: string
  /** Open TCP connections, or UDP senders with a live session. */
  readonly connections: number
  readonly totals: ListenerTotals
  listen: () => Promise<void>
  activate: (route: TunnelRoute) => void
  deactivate: () => void
  /** Graceful stop: take no new connections; open ones carry on. */
  stopAccepting: () => void
  /** Resolves once no connection is open. */
  idle: () => Promise<void>
  close: () => Promise<void>
}

export interface LocalListenerInit {
  spec: TunnelSpec
  events: NodeEvents
  onRouteFailed: (err: Error) => void
  udpIdleMs: number
}

export function createLocalListener (init: LocalListenerInit): LocalListener {
  const { udpIdleMs, ...common } = init
  return init.spec.transport === 'udp'
    ? new UdpTunnelListener({ ...common, idleMs: udpIdleMs })
    : new TunnelListener(common)
}
