/**
 * Dialing a peer that may be reachable only through a relay. Its direct addresses (peer
 * store: identify, provider records) are dialed first; after a short head start, or at
 * once when that failed or there is none, its circuits are tried beside them, one after
 * another: those its provider record names, then every relay we hold or know. Whichever
 * connects first wins. With no address known at all, libp2p looks the peer up first and
 * the relays are tried only after that dial failed.
 *
 * Why not one dial by peer id: libp2p tries a peer's addresses one after another, up to 6 s
 * each, circuits last; a provider behind NAT has addresses that swallow SYNs (its LAN
 * address, a mapping its NAT filters), and waiting them out held a by-name tunnel's
 * recovery after a relay loss past DIAL_TIMEOUT_MS. Circuits go to the transport itself,
 * one at a time: libp2p's dial queue would fold them into the running dial to the same
 * peer, and two circuits at once would cost two relay slots and two splices.
 */
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Connection } from '@libp2p/interface'
import { DIAL_TIMEOUT_MS, DIRECT_AFTER_RELAYS_MS, RELAY_DIAL_HEAD_START_MS } from '../constants.ts'
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
  /** @default DIRECT_AFTER_RELAYS_MS */
  directAfterRelaysMs?: number
}

const isCircuit = (ma: Multiaddr): boolean => ma.getComponents().some(c => c.name === 'p2p-circuit')

/**
 * Dials `peer`: its direct addresses, and its circuits (its own, then through each of
 * `relays`, multiaddrs ending in the relay's /p2p/ id) once the direct dial failed or had
 * its head start. Resolves with the first connection, or with every error when all failed.
 */
export async function dialPeer (swarm: Swarm, peer: string, relays: () => string[], signal: AbortSignal, options: DialOptions = {}): Promise<DialOutcome> {
  const peerId = peerIdFromString(peer)
  const open = (): Connection | undefined => swarm.getConnections(peerId).find(c => c.status === 'open')
  const existing = open()
  if (existing != null) return { connection: existing, errors: [] }

  const timeoutMs = options.timeoutMs ?? DIAL_TIMEOUT_MS
  const errors: string[] = []
  const attemptSignal = (): AbortSignal => AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)])
  const known = (await swarm.peerStore.get(peerId).catch(() => undefined))?.addresses.map(a => a.multiaddr) ?? []
  const withId = (ma: Multiaddr): Multiaddr => ma.getComponents().at(-1)?.name === 'p2p' ? ma : ma.encapsulate(`/p2p/${peer}`)
  const direct = known.filter(ma => !isCircuit(ma)).map(withId)
  let done = false

  // No address known at all: libp2p looks the peer up (DHT) when dialed by id alone.
  const directDial: Promise<Connection> = known.length === 0
    ? swarm.dial(peerId, { signal: attemptSignal() })
    : direct.length > 0
      ? swarm.dial(direct, { signal: attemptSignal() })
      : Promise.reject(new Error('no direct address known'))
  directDial.catch((err: Error) => { if (direct.length > 0 || known.length === 0) errors.push(err.message) })

  const relayedDial = (async (): Promise<Connection> => {
    // A lookup by id may come back with the peer's own circuits and dial one: wait for it,
    // rather than open a second circuit beside it.
    const settled = directDial.then(() => {}, () => {})
    await (known.length === 0 ? settled : Promise.race([settled, delay(options.headStartMs ?? RELAY_DIAL_HEAD_START_MS, signal)]))
    const circuits = [...known.filter(isCircuit).map(withId).map(ma => ma.toString()), ...relays().map(r => `${r}/p2p-circuit/p2p/${peer}`)]
    for (const circuit of new Set(circuits)) {
      const connection = open()
      if (connection != null) return connection
      if (done || signal.aborted) break
      try {
        return await swarm.services.internals.transportManager.dial(multiaddr(circuit), { signal: attemptSignal() })
      } catch (err) {
        errors.push((err as Error).message)
      }
    }
    throw new Error('no relay reached the peer')
  })()

  // Every relay said no (the peer holds no slot there: it is down or restarting): its direct
  // addresses get DIRECT_AFTER_RELAYS_MS more, not the rest of a DIAL_TIMEOUT_MS of SYNs to stale
  // mappings; the tunnel looks the peer up again sooner (a restarted provider held it ~10 s).
  const relaysFailed = relayedDial.then(async () => await new Promise<never>(() => {}), async () => {
    await delay(options.directAfterRelaysMs ?? DIRECT_AFTER_RELAYS_MS, signal)
    throw new Error('no relay reached the peer, and its direct addresses did not answer')
  })
  try {
    return { connection: await Promise.race([Promise.any([directDial, relayedDial]), relaysFailed]), errors }
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
