/**
 * The dials of a punch round (puncher.ts): every candidate at once, each with a signal of its
 * own, and a direct connection the peer's dial made through our listener counts too.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Connection } from '@libp2p/interface'
import { PunchError } from '../errors.ts'
import type { Swarm } from '../swarm.ts'
// Registers the `/udx` multiaddr protocol that UDP candidates are dialled with.
import '../transport/udx/addr.ts'

/** How long a dial that may have made the winning connection keeps running after the round (see connectDirect). */
const WINNER_GRACE_MS = 2_000

/** One dial of a round: where, in which TLS/multistream role, and whether from the listening port. */
export interface DirectDial { addr: string, initiator: boolean, reusePort: boolean }

export function isRelayed (connection: Connection): boolean {
  return connection.remoteAddr.toString().includes('/p2p-circuit')
}

export function isUdx (addr: string): boolean {
  return addr.includes('/udx')
}

/**
 * Makes every dial at once, and also takes a direct connection that the peer's own dial
 * made through our listener. Resolves with the direct connection's address. When a UDP
 * (udx) connection wins, TCP dials still in flight go on until `signal` (the round's
 * deadline): both paths, when both connect.
 */
export async function connectDirect (swarm: Swarm, peer: string, plan: DirectDial[], signal: AbortSignal): Promise<string> {
  const existing = directConnection(swarm, peer)
  if (existing != null) return existing.remoteAddr.toString()
  const transportManager = swarm.services.internals.transportManager
  // @libp2p/tcp hands the dial signal to the socket, which it destroys on abort for its
  // whole life: each dial gets a signal of its own, cut loose from the round's deadline
  // once that dial has won, and aborted if it lost.
  const won = new Set<AbortController>()
  const dials = plan.map(({ addr, initiator, reusePort }) => {
    const controller = new AbortController()
    const onAbort = (): void => { controller.abort() }
    signal.addEventListener('abort', onAbort, { once: true })
    const target = multiaddr(`${addr}/p2p/${peer}`)
    // `initiator` and `reusePort` reach transport/reuseport-tcp.ts through the transport manager.
    const result = transportManager.dial(target, { signal: controller.signal, initiator, reusePort } as Parameters<typeof transportManager.dial>[1])
      .then(connection => {
        won.add(controller)
        signal.removeEventListener('abort', onAbort)
        return connection
      })
    return { addr, controller, onAbort, result }
  })
  let onOpen: ((evt: CustomEvent<Connection>) => void) | undefined
  const viaListener = new Promise<Connection>((resolve, reject) => {
    onOpen = evt => { if (evt.detail.remotePeer.toString() === peer && !isRelayed(evt.detail)) resolve(evt.detail) }
    swarm.addEventListener('connection:open', onOpen)
    signal.addEventListener('abort', () => reject(new PunchError('timed out')), { once: true })
  })
  let winner: string | undefined
  try {
    const connection = await Promise.any([...dials.map(async d => d.result), viaListener])
    winner = connection.remoteAddr.toString()
    return winner
  } catch (err) {
    const reasons = err instanceof AggregateError ? err.errors.map(e => (e as Error).message) : [(err as Error).message]
    throw new PunchError(signal.aborted ? 'timed out' : `all dials failed: ${[...new Set(reasons)].join('; ')}`)
  } finally {
    if (onOpen != null) swarm.removeEventListener('connection:open', onOpen)
    const udpWon = winner != null && isUdx(winner)
    for (const d of dials) {
      d.result.catch(() => {})
      if (won.has(d.controller)) continue
      // A UDP path won: a TCP dial in flight goes on until the round's deadline, so both
      // paths exist when both can (new tunnel streams take TCP, roles/consumer.ts `rank`).
      if (udpWon && !isUdx(d.addr)) continue
      signal.removeEventListener('abort', d.onAbort)
      // Dials still in flight are stopped; the one that won keeps a signal that never aborts.
      // connection:open fires before the dial that made the connection returns: a dial to the
      // winner's address is spared for a moment, then stopped unless it has returned by then.
      const mayHaveWon = winner != null && winner.split('/p2p/')[0] === d.addr
      if (!mayHaveWon) d.controller.abort()
      else setTimeout(() => { if (!won.has(d.controller)) d.controller.abort() }, WINNER_GRACE_MS).unref()
    }
  }
}

function directConnection (swarm: Swarm, peer: string): Connection | undefined {
  return swarm.getConnections(peerIdFromString(peer)).find(c => c.status === 'open' && !isRelayed(c))
}
