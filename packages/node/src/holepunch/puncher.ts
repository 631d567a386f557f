/**
 * Hole punching by TCP simultaneous open, coordinated over the relayed connection.
 *
 * The tunnel's client (A) opens `/punchgate/punch/1.0.0` on the relayed connection and
 * sends its candidate addresses; the server side (B) answers with its own; A sends sync,
 * measuring the round trip. B dials A's candidates at once, A dials B's half a round trip
 * later, both from their listening port (transport/reuseport-tcp.ts): each NAT sees an
 * outgoing connection to the other's mapping, and the SYNs cross.
 *
 * Roles: B is the TLS/multistream initiator and A the responder, whichever way the TCP
 * connection forms. A dials after B so that a SYN reaching a listener (a full-cone or
 * public side) can only be B's reaching A, which A's listener accepts as the responder.
 *
 * We do not use @libp2p/dcutr: it closes the relayed connection (and every tunnel on it)
 * once it succeeds, offers only AutoNAT-verified addresses, and in libp2p 3.3 its
 * `initiator: false` dial option is lost in the dial queue. We dial through the transport
 * manager, which keeps it.
 */
import { setTimeout as delay } from 'node:timers/promises'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import type { Connection, Stream } from '@libp2p/interface'
import { MAX_FRAME_BYTES, PUNCH_ATTEMPT_TIMEOUT_MS, PUNCH_PROTOCOL } from '../constants.ts'
import { PunchError } from '../errors.ts'
import type { NodeEvents } from '../events.ts'
import type { Swarm } from '../swarm.ts'
import type { ObservedAddresses } from './observed.ts'
import { decodePunch, encodePunch, type PunchMessage } from './wire.ts'

export const PUNCH_METHOD = 'tcp-simultaneous-open'

export interface PunchOutcome {
  addr: string
  ms: number
}

export interface HolePuncherInit {
  swarm: Swarm
  observed: ObservedAddresses
  events: NodeEvents
  attemptTimeoutMs?: number
}

function isRelayed (connection: Connection): boolean {
  return connection.remoteAddr.toString().includes('/p2p-circuit')
}

async function exchange (stream: Stream, signal: AbortSignal): Promise<{
  read: () => Promise<PunchMessage>
  write: (m: PunchMessage) => Promise<void>
}> {
  const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
  return {
    read: async () => decodePunch((await lp.read({ signal })).subarray()),
    write: async m => { await lp.write(encodePunch(m), { signal }) }
  }
}

export class HolePuncher {
  private readonly swarm: Swarm
  private readonly observed: ObservedAddresses
  private readonly events: NodeEvents
  private readonly attemptTimeoutMs: number
  private readonly shutdown = new AbortController()

  constructor (init: HolePuncherInit) {
    this.swarm = init.swarm
    this.observed = init.observed
    this.events = init.events
    this.attemptTimeoutMs = init.attemptTimeoutMs ?? PUNCH_ATTEMPT_TIMEOUT_MS
  }

  async start (): Promise<void> {
    await this.swarm.handle(PUNCH_PROTOCOL, (stream, connection) => {
      void this.respond(stream, connection)
    }, { runOnLimitedConnection: true, maxInboundStreams: 4 })
  }

  stop (): void {
    this.shutdown.abort()
  }

  /** One round as A, the side that wants the direct path. Resolves once one exists. */
  async punch (peer: string, attempt: number): Promise<PunchOutcome> {
    const started = Date.now()
    const signal = AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(this.attemptTimeoutMs)])
    const ours = this.observed.candidates()
    this.events.emitEvent('holepunch.started', { peer, attempt, method: PUNCH_METHOD, role: 'initiator', candidates: ours })
    let stream: Stream | undefined
    try {
      const relayed = this.swarm.getConnections(peerIdFromString(peer)).find(c => c.status === 'open' && isRelayed(c))
      if (relayed == null) throw new PunchError('no relayed connection to coordinate over')
      stream = await relayed.newStream(PUNCH_PROTOCOL, { signal, runOnLimitedConnection: true })
      const wire = await exchange(stream, signal)
      const sent = Date.now()
      await wire.write({ type: 'connect', addrs: ours, attempt })
      const reply = await wire.read()
      if (reply.type !== 'connect') throw new PunchError('peer answered connect with sync')
      const rtt = Date.now() - sent
      await wire.write({ type: 'sync' })
      await stream.close({ signal })
      if (reply.addrs.length === 0) throw new PunchError('peer has no candidate addresses')
      await delay(rtt / 2, undefined, { signal })
      const addr = await this.connectDirect(peer, reply.addrs, false, signal)
      const outcome = { addr, ms: Date.now() - started }
      this.events.emitEvent('holepunch.succeeded', { peer, attempt, method: PUNCH_METHOD, role: 'initiator', ...outcome })
      return outcome
    } catch (err) {
      stream?.abort(err as Error)
      const error = signal.aborted && !this.shutdown.signal.aborted ? `no direct connection within ${this.attemptTimeoutMs} ms` : (err as Error).message
      this.events.emitEvent('holepunch.failed', { peer, attempt, method: PUNCH_METHOD, role: 'initiator', ms: Date.now() - started, error })
      throw new PunchError(error)
    }
  }

  /** B's side of a round: answer, then dial at once on sync. */
  private async respond (stream: Stream, connection: Connection): Promise<void> {
    const started = Date.now()
    const peer = connection.remotePeer.toString()
    const signal = AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(this.attemptTimeoutMs)])
    let attempt = 1
    try {
      const wire = await exchange(stream, signal)
      const connect = await wire.read()
      if (connect.type !== 'connect') throw new PunchError('expected connect')
      attempt = connect.attempt ?? 1
      const ours = this.observed.candidates()
      this.events.emitEvent('holepunch.started', { peer, attempt, method: PUNCH_METHOD, role: 'responder', candidates: ours })
      await wire.write({ type: 'connect', addrs: ours })
      const sync = await wire.read()
      if (sync.type !== 'sync') throw new PunchError('expected sync')
      if (connect.addrs.length === 0) throw new PunchError('peer has no candidate addresses')
      const addr = await this.connectDirect(peer, connect.addrs, true, signal)
      this.events.emitEvent('holepunch.succeeded', { peer, attempt, method: PUNCH_METHOD, role: 'responder', addr, ms: Date.now() - started })
    } catch (err) {
      stream.abort(err as Error)
      const error = signal.aborted && !this.shutdown.signal.aborted ? `no direct connection within ${this.attemptTimeoutMs} ms` : (err as Error).message
      this.events.emitEvent('holepunch.failed', { peer, attempt, method: PUNCH_METHOD, role: 'responder', ms: Date.now() - started, error })
    }
  }

  /**
   * Dials every candidate at once, and also takes a direct connection that the peer's own
   * dial made through our listener. Resolves with the direct connection's address.
   */
  private async connectDirect (peer: string, addrs: string[], initiator: boolean, signal: AbortSignal): Promise<string> {
    const existing = this.directConnection(peer)
    if (existing != null) return existing.remoteAddr.toString()
    const transportManager = this.swarm.services.internals.transportManager
    // @libp2p/tcp hands the dial signal to the socket, which it destroys on abort for its
    // whole life: each dial gets a signal of its own, cut loose from the round's deadline
    // once that dial has won, and aborted if it lost.
    const won = new Set<AbortController>()
    const dials = addrs.map(addr => {
      const controller = new AbortController()
      const onAbort = (): void => { controller.abort() }
      signal.addEventListener('abort', onAbort, { once: true })
      const target = multiaddr(`${addr}/p2p/${peer}`)
      const result = transportManager.dial(target, { signal: controller.signal, initiator } as Parameters<typeof transportManager.dial>[1])
        .then(connection => { won.add(controller); return connection })
      return { addr, controller, onAbort, result }
    })
    let onOpen: ((evt: CustomEvent<Connection>) => void) | undefined
    const viaListener = new Promise<Connection>((resolve, reject) => {
      onOpen = evt => { if (evt.detail.remotePeer.toString() === peer && !isRelayed(evt.detail)) resolve(evt.detail) }
      this.swarm.addEventListener('connection:open', onOpen)
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
      if (onOpen != null) this.swarm.removeEventListener('connection:open', onOpen)
      for (const d of dials) {
        signal.removeEventListener('abort', d.onAbort)
        // Dials still in flight are stopped; the one that won keeps a signal that never aborts.
        // connection:open fires before the dial that made the connection returns: spare it too.
        const madeWinner = winner != null && winner.split('/p2p/')[0] === d.addr
        if (!won.has(d.controller) && !madeWinner) d.controller.abort()
        d.result.catch(() => {})
      }
    }
  }

  private directConnection (peer: string): Connection | undefined {
    return this.swarm.getConnections(peerIdFromString(peer)).find(c => c.status === 'open' && !isRelayed(c))
  }
}
