/**
 * Periodic round-trip measurements: every interval, each connected peer is pinged
 * (libp2p ping, over its best connection) and the result logged as `peer.rtt`, which
 * `punchgate analyze` turns into per-peer latency figures.
 */
import type { NodeEvents } from './events.ts'
import { pathOf } from './protocol/expose.ts'
import type { Swarm } from './swarm.ts'

/** A ping that takes longer than this is a loss, not a measurement. */
const PING_TIMEOUT_MS = 10_000

export interface RttReporterInit {
  swarm: Swarm
  events: NodeEvents
  intervalMs: number
}

/** Starts the probes; the returned function stops them (idempotent). */
export function startRttReporter (init: RttReporterInit): () => void {
  const { swarm, events, intervalMs } = init
  const stopped = new AbortController()
  let running = false

  const probe = async (): Promise<void> => {
    // A slow round must not overlap the next one and double the pings.
    if (running) return
    running = true
    try {
      await Promise.all(swarm.getPeers().map(async peerId => {
        const connections = swarm.getConnections(peerId).filter(c => c.status === 'open')
        if (connections.length === 0) return
        const path = connections.some(c => pathOf(c) === 'direct') ? 'direct' : 'relay'
        try {
          const rttMs = await swarm.services.ping.ping(peerId, {
            signal: AbortSignal.any([stopped.signal, AbortSignal.timeout(PING_TIMEOUT_MS)])
          })
          if (!stopped.signal.aborted) events.emitEvent('peer.rtt', { peer: peerId.toString(), rttMs, path })
        } catch {
          // A failed ping says nothing about latency; libp2p's connection monitor handles dead peers.
        }
      }))
    } finally {
      running = false
    }
  }

  const timer = setInterval(() => { void probe() }, intervalMs)
  return () => {
    clearInterval(timer)
    stopped.abort()
  }
}
