/**
 * Dialing a peer that may be reachable only through a relay: its known addresses (peer
 * store, provider records) first, and after a short head start every relay we know beside
 * them, whichever connects first. Relayed dials go straight to the transport: libp2p's dial
 * queue would fold a second dial to the same peer into the first one and try its addresses
 * only after the first list ran out.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Connection } from '@libp2p/interface'
import { DIAL_TIMEOUT_MS, RELAY_DIAL_HEAD_START_MS } from '../constants.ts'
import type { Swarm } from '../swarm.ts'

export interface DialOutcome {
  connection?: Connection
  /** Why each failed attempt failed, in the order they failed. */
  errors: string[]
}

export interface DialOptions {
  /** @default DIAL_TIMEOUT_MS, per attempt */
  timeoutMs?: number
  /** @default RELAY_DIAL_HEAD_START_MS */
  headStartMs?: number
}

/**
 * Dials `peer` by its id, and through each of `relays` (multiaddrs ending in the relay's
 * /p2p/ id; tried one after another) once the direct dial failed or had its head start.
 * Resolves with the first connection, or with every error when all failed.
 */
export async function dialPeer (swarm: Swarm, peer: string, relays: () => string[], signal: AbortSignal, options: DialOptions = {}): Promise<DialOutcome> {
  const timeoutMs = options.timeoutMs ?? DIAL_TIMEOUT_MS
  const errors: string[] = []
  const attemptSignal = (): AbortSignal => AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)])
  let done = false

  const direct = swarm.dial(peerIdFromString(peer), { signal: attemptSignal() })
  direct.catch((err: Error) => { errors.push(err.message) })

  const relayed = (async (): Promise<Connection> => {
    await Promise.race([direct.catch(() => {}), delay(options.headStartMs ?? RELAY_DIAL_HEAD_START_MS, signal)])
    for (const relay of relays()) {
      if (done || signal.aborted) break
      try {
        return await swarm.services.internals.transportManager.dial(multiaddr(`${relay}/p2p-circuit/p2p/${peer}`), { signal: attemptSignal() })
      } catch (err) {
        errors.push((err as Error).message)
      }
    }
    throw new Error('no relay reached the peer')
  })()

  try {
    return { connection: await Promise.any([direct, relayed]), errors }
  } catch {
    return { errors }
  } finally {
    done = true
  }
}

async function delay (ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>(resolve => {
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
    function done (): void {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
  })
}
