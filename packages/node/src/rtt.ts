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

export interface RttReporter {
  /** The last measured RTT per connected peer id, for status. */
  readonly latest: ReadonlyMap<string, number>
  /** Stops the probes (idempotent). */
  stop: () => void
}

export function startRttReporter (init: RttReporterInit): RttReporter {
  const { swarm, events, intervalMs } = init
  const stopped = new AbortController()
  const latest = new Map<string, number>()
  let running = false

  const probe = async (): Promise<void> => {
    // A slow round must not overlap the next one and double the pings.
    if (running) return
    running = true
    try {
      const peers = swarm.getPeers()
      const connected = new Set(peers.map(p => p.toString()))
      for (const peer of latest.keys()) if (!connected.has(peer)) latest.delete(peer)
      await Promise.all(peers.map(async peerId => {
        const connections = swarm.getConnections(peerId).filter(c => c.status === 'open')
        if (connections.length === 0) return
        const path = connections.some(c => pathOf(c) === 'direct') ? 'direct' : 'relay'
        try {
          const rttMs = await swarm.services.ping.ping(peerId, {
            signal: AbortSignal.any([stopped.signal, AbortSignal.timeout(PING_TIMEOUT_MS)])
          })
          if (stopped.signal.aborted) return
          latest.set(peerId.toString(), rttMs)
          events.emitEvent('peer.rtt', { peer: peerId.toString(), rttMs, path })
        } catch {
          // A failed ping says nothing about latency; libp2p's connection monitor handles dead peers.
        }
      }))
    } finally {
      running = false
    }
  }

  const timer = setInterval(() => { void probe() }, intervalMs)
  return {
    latest,
    stop: () => {
      clearInterval(timer)
      stopped.abort()
    }
  }
}
