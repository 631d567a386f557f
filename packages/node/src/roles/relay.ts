import { peerIdFromString } from '@libp2p/peer-id'
import type { Connection, PeerId } from '@libp2p/interface'
import { startsPublic, type NodeConfig } from '../config.ts'
import { SPLICE_PAIR_TIMEOUT_MS, SPLICE_PROTOCOL, SPLICE_RETIRE_CHECK_MS, SPLICE_TIMEOUT_MS, TUNNEL_PROTOCOL, UDP_PROTOCOL } from '../constants.ts'
import { ListenError } from '../errors.ts'
import type { NodeEvents } from '../events.ts'
import { formatHostPort, pathOf } from '../protocol/expose.ts'
import { startSplicer, type Splicer } from '../splice/splicer.ts'
import { acceptSplices, isSpliced, serveSplices, spliceTo } from '../splice/service.ts'
import { relayTrusted } from '../relay.ts'
import type { Swarm } from '../swarm.ts'

export interface SplicingDeps {
  config: NodeConfig
  swarm: Swarm
  events: NodeEvents
  /** Whether a peer id is a relay we hold a slot on, or a bootstrap (we take splices only from them). */
  isRelay: (peer: string) => boolean
  /** An abort signal for `ms` that also fires on shutdown. */
  signal: (ms: number) => AbortSignal
  running: () => boolean
  onStop: (hook: () => Promise<void>) => void
}

/**
 * The relay role's splicing (docs/splice.md): a public node pairs relayed connections on
 * --relay-splice; a private one takes splices from its relays, asks for one on every
 * circuit it dials, and retires spliced connections once the peer is direct.
 */
export class Splicing {
  private readonly deps: SplicingDeps
  private splicer?: Splicer

  constructor (deps: SplicingDeps) {
    this.deps = deps
  }

  /** For status(): the splicer's address and counters, when it runs. */
  status (): { splice?: { addr: string, active: number, copied: number } } {
    const splicer = this.splicer
    return splicer != null ? { splice: { addr: splicer.address, active: splicer.active(), copied: splicer.copied() } } : {}
  }

  /** A public node binds its splicer (--relay-splice) before it listens. */
  async bind (): Promise<void> {
    if (startsPublic(this.deps.config)) await this.openSplicer(true)
  }

  /**
   * Binds the splicer (--relay-splice). A port that cannot be bound turns splicing off with
   * `splice.unavailable`, or, when `strict` and the port was given explicitly, throws ListenError.
   */
  private async openSplicer (strict: boolean): Promise<void> {
    const splice = this.deps.config.relaySplice
    if (splice == null || this.splicer != null) return
    const relayConfig = this.deps.config.relay
    try {
      this.splicer = await startSplicer({
        host: splice.at.host,
        port: splice.at.port,
        pairTimeoutMs: SPLICE_PAIR_TIMEOUT_MS,
        maxPairs: relayConfig.maxReservations,
        maxBytesPerPair: Number(relayConfig.maxBytes),
        maxDurationMs: relayConfig.maxDurationMs,
        maxUnpaired: 2 * relayConfig.maxReservations
      })
    } catch (err) {
      const addr = formatHostPort(splice.at)
      const reason = `${(err as Error).message} (choose another with --relay-splice HOST:PORT, or off)`
      if (splice.explicit && strict) throw new ListenError([addr], reason, 'relay-splice')
      // The default port (TCP listen port + 1) is taken: relay over circuits only, and say so.
      this.deps.events.emitEvent('splice.unavailable', { addr, error: reason })
      return
    }
    const splicer = this.splicer
    this.deps.onStop(async () => splicer.close())
  }

  /** The node became public (roles/reachability.ts): bind the splicer and splice for peers instead of taking offers. */
  async becomePublic (): Promise<void> {
    await this.openSplicer(false)
    await this.deps.swarm.unhandle(SPLICE_PROTOCOL)
    await this.serve()
  }

  /** The node became private: close the splicer (cutting its pairs) and take offers from our bootstraps again. */
  async becomePrivate (): Promise<void> {
    const splicer = this.splicer
    this.splicer = undefined
    await splicer?.close()
    await this.deps.swarm.unhandle(SPLICE_PROTOCOL)
    await acceptSplices(this.deps.swarm, peer => this.deps.isRelay(peer.toString()))
  }

  /**
   * A public node splices for its peers (bind); a private one takes splices from its relays
   * (bootstraps and relays it holds a slot on). Any node with bootstraps asks for one on
   * every relayed connection it dials.
   */
  async start (): Promise<void> {
    if (startsPublic(this.deps.config)) {
      await this.serve()
    } else {
      await acceptSplices(this.deps.swarm, peer => this.deps.isRelay(peer.toString()))
    }
    if (this.deps.config.bootstrap.length === 0) return
    this.deps.swarm.addEventListener('connection:open', evt => {
      const connection = evt.detail
      if (pathOf(connection) === 'direct') this.retireSplices(connection.remotePeer)
      else if (!isSpliced(connection) && connection.direction === 'outbound') this.askForSplice(connection)
    })
  }

  /** Answers splice requests with the splicer, when it runs. */
  private async serve (): Promise<void> {
    const splicer = this.splicer
    if (splicer == null) return
    // The relay's own rules: the peer asked for holds a reservation here, and with
    // --relay-allow allowed both ends are on the allow list.
    const relay = (this.deps.swarm.services as { relay?: { reservations: { has: (peer: PeerId) => boolean } } }).relay
    const allowed = new Set(this.deps.config.allow)
    const onList = (peer: PeerId): boolean => this.deps.config.relayAllow !== 'allowed' || allowed.has(peer.toString())
    const trusted = relayTrusted(this.deps.config)
    await serveSplices(this.deps.swarm, splicer, (from, to) => relay?.reservations.has(to) === true && onList(from) && onList(to),
      (from, to) => trusted(from) && trusted(to))
  }

  /** Asks the relay of a circuit we dialled for a spliced twin of it; on failure the circuit carries on. */
  private askForSplice (circuit: Connection): void {
    const ids = circuit.remoteAddr.getComponents()
    const at = ids.findIndex(c => c.name === 'p2p-circuit')
    const relay = at > 0 ? ids[at - 1]?.value : undefined
    if (relay == null) return
    const peer = circuit.remotePeer.toString()
    const started = Date.now()
    spliceTo(this.deps.swarm, peerIdFromString(relay), circuit.remotePeer, this.deps.signal(SPLICE_TIMEOUT_MS)).then(
      spliced => {
        this.deps.events.emitEvent('splice.opened', { peer, relay, addr: spliced.remoteAddr.toString(), ms: Date.now() - started })
        this.retireSplices(circuit.remotePeer)
      },
      (err: Error) => {
        if (this.deps.running()) this.deps.events.emitEvent('splice.failed', { peer, relay, ms: Date.now() - started, error: err.message })
      })
  }

  /**
   * Once a peer is direct, a spliced connection to it only holds a pair on the relay:
   * close it as soon as no tunnel stream uses it (checked again every SPLICE_RETIRE_CHECK_MS).
   */
  private retireSplices (peer: PeerId): void {
    if (!this.deps.running()) return
    const open = this.deps.swarm.getConnections(peer).filter(c => c.status === 'open')
    if (!open.some(c => pathOf(c) === 'direct')) return
    // Only the side that asked for the splice retires it: that side opens the tunnel streams and
    // sends new ones direct; the other side closing it raced a stream the asker was opening on it.
    for (const connection of open.filter(c => isSpliced(c) && c.direction === 'outbound')) {
      // A stream still choosing its protocol may be a tunnel connection opened on the splice a
      // moment before the direct path came: closing under it cut that connection (issue 19).
      if (connection.streams.some(s => s.protocol == null || s.protocol === '' || s.protocol === TUNNEL_PROTOCOL || s.protocol === UDP_PROTOCOL)) {
        setTimeout(() => this.retireSplices(peer), SPLICE_RETIRE_CHECK_MS).unref()
        return
      }
      connection.close().catch(() => {})
    }
  }
}
