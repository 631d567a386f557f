/**
 * Fast liveness checks on the connections a live tunnel depends on, so a dead path is
 * noticed in seconds, not at libp2p's next monitor ping (every 10 s).
 *
 * When this node's public address or its NAT's mappings change (roaming, a router reboot,
 * a new address from the ISP), every connection through the NAT is dead, but nothing says
 * so until a packet is sent on it: the peer's NAT drops it silently, or the remote host
 * answers with a reset. Issue 19 measured echo stalls of 14-35 s. Here each watched
 * connection (the tunnels' peers, the relays their circuits go through, our bootstraps) gets
 * a libp2p ping (`/ipfs/ping/1.0.0`, on that very connection) every LIVENESS_INTERVAL_MS;
 * one unanswered for LIVENESS_TIMEOUT_MS is aborted (`peer.unresponsive`). The machine
 * then does what it does for any lost connection: a lost direct path falls back to the
 * relay and punches again, a lost peer is looked up and dialled again, a lost bootstrap is
 * redialled.
 *
 * Only while a tunnel is live, and only to the peers it needs: a relay is not pinged by
 * every client holding a slot on it.
 */
import { randomBytes } from 'node:crypto'
import { PING_PROTOCOL } from '@libp2p/ping'
import type { Connection } from '@libp2p/interface'
import { LIVENESS_INTERVAL_MS, LIVENESS_TIMEOUT_MS } from './constants.ts'
import type { NodeEvents } from './events.ts'
import type { Swarm } from './swarm.ts'

const PING_BYTES = 32

export interface LivenessInit {
  swarm: Swarm
  events: NodeEvents
  /** The peers whose connections to check now (none: nothing is sent). */
  watched: () => Set<string>
  intervalMs?: number
  timeoutMs?: number
}

/** One ping on `connection`; rejects when it is not answered within `signal`. */
async function pingOn (connection: Connection, signal: AbortSignal): Promise<void> {
  const stream = await connection.newStream(PING_PROTOCOL, { signal, runOnLimitedConnection: true })
  const onAbort = (): void => { stream.abort(new Error('ping timed out')) }
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    const sent = randomBytes(PING_BYTES)
    stream.send(sent)
    let got = 0
    for await (const chunk of stream) {
      got += chunk.byteLength
      if (got >= PING_BYTES) break
    }
    if (got < PING_BYTES) throw new Error('ping stream ended early')
  } finally {
    signal.removeEventListener('abort', onAbort)
    stream.abort(new Error('ping done'))
  }
}

/** Starts the checks; returns a function that stops them. */
export function startLiveness (init: LivenessInit): () => void {
  const { swarm, events, watched } = init
  const timeoutMs = init.timeoutMs ?? LIVENESS_TIMEOUT_MS
  const stopped = new AbortController()
  const inFlight = new Set<string>()

  const check = (connection: Connection): void => {
    if (inFlight.has(connection.id)) return
    inFlight.add(connection.id)
    const started = Date.now()
    const timeout = AbortSignal.timeout(timeoutMs)
    const signal = AbortSignal.any([stopped.signal, timeout])
    // Aborting the stream on timeout also ends a read that waits for bytes that never come.
    pingOn(connection, signal).then(() => {}, () => {
      // Only silence kills: a refused stream or a peer without ping says the path works.
      if (!timeout.aborted || stopped.signal.aborted || connection.status !== 'open') return
      events.emitEvent('peer.unresponsive', { peer: connection.remotePeer.toString(), addr: connection.remoteAddr.toString(), ms: Date.now() - started })
      connection.abort(new Error(`no answer to a ping within ${timeoutMs} ms`))
    }).finally(() => inFlight.delete(connection.id))
  }

  const timer = setInterval(() => {
    const peers = watched()
    if (peers.size === 0) return
    for (const connection of swarm.getConnections()) {
      if (connection.status === 'open' && peers.has(connection.remotePeer.toString())) check(connection)
    }
  }, init.intervalMs ?? LIVENESS_INTERVAL_MS)
  timer.unref()
  return () => {
    clearInterval(timer)
    stopped.abort()
  }
}
