/**
 * Hole punching by TCP simultaneous open, coordinated over the relayed connection.
 *
 * The round runs on libp2p's DCUtR (`/libp2p/dcutr`, round-wire.ts), or on Punchgate's own
 * `/punchgate/punch/1.0.0` with a Punchgate node that predates it. One side (A: the tunnel's
 * client, or us when a standard peer reached us over a relay, standard-peers.ts) opens the stream
 * and sends CONNECT with its candidate addresses; the other (B) answers with its own; A sends
 * SYNC, measuring the round trip. B dials A's candidates at once, A dials B's half a round trip
 * later, both from their listening port (transport/reuseport-tcp.ts): each NAT sees an
 * outgoing connection to the other's mapping, and the SYNs cross. In the DCUtR spec's words
 * A is "B" (it sends CONNECT) and B is "A": the names below are Punchgate's.
 *
 * Roles: B is the TLS/multistream initiator and A the responder (as the DCUtR spec says: the
 * side that receives CONNECT is the client). With a Punchgate peer (its messages carry the
 * `punchgate` extension) that holds whichever way the TCP connection forms: B's dial, or B's
 * listener accepting A's dial (transport/reuseport-tcp.ts `expectInbound`: A's SYN can reach
 * B's listener first when B's side is a full cone or public and B is slow to dial, or A is
 * behind a symmetric NAT), upgrade as initiator; A's dial, or A's listener accepting B's, as
 * responder. A standard peer gets the spec's roles on a simultaneous open and plain dials
 * otherwise: js-libp2p loses `initiator: false` in its dial queue and dials from ephemeral
 * ports, so its SYN reaching our listener is an ordinary client; and when we are A we also
 * dial its candidates as a client from an ephemeral port (the spec's unilateral upgrade), for a
 * standard peer on a public or full-cone host whose listener takes our SYN.
 *
 * We do not run @libp2p/dcutr itself: it closes the relayed connection (and every tunnel on it)
 * once it succeeds, offers only AutoNAT-verified addresses, and in libp2p 3.3 its
 * `initiator: false` dial option is lost in the dial queue. We dial through the transport
 * manager, which keeps it.
 *
 * UDP beside TCP (on unless --no-udp-punch; holepunch/udp-observe.ts and transport/udx/): each
 * side also offers its udx socket's candidates; after sync B dials A's over udx (its resent SYNs
 * open B's NAT) while A sends PROBEs to B's (opening A's), and the first direct connection of
 * either kind ends the round. When UDP came first, TCP dials in flight go on until the round's
 * deadline: both paths, when both connect (new tunnel streams take TCP). The roles need no
 * care over udx: B's dial is the initiator, A's socket accepts it.
 *
 * Hard NATs (UDP punching, hard-nat.ts): when exactly one side's UDP candidates look symmetric,
 * B says so in its CONNECT and the round also runs the birthday method
 * (transport/udx/birthday.ts): the symmetric side fans out sockets towards the other's
 * public UDP mapping, the other sprays PROBEs at ports of the symmetric side's
 * public IP, the ports after its observed one first (port prediction, for NATs that allocate in
 * sequence), then random ones; a hit makes a udx connection like any other, `method`
 * `udp-birthday` (whether the hit port was a predicted one or chance, nothing here can tell:
 * the predicted ports are sprayed first either way).
 *
 * What a peer can make us dial (docs/nat-traversal.md): requests are answered only on relayed
 * connections, only for peers `mayPunchWith` names (we opened a tunnel to them, or they may use
 * one of our services), at most PUNCH_ROUNDS_PER_MINUTE rounds per peer, on either protocol;
 * the peer's candidates pass candidates.ts before any dial, in both roles.
 */
import { setTimeout as delay } from 'node:timers/promises'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Connection, Stream } from '@libp2p/interface'
import {
  PUNCH_ATTEMPT_TIMEOUT_MS, PUNCH_REFUSALS_LOGGED_PER_MINUTE, PUNCH_REFUSALS_LOGGED_TOTAL_PER_MINUTE, PUNCH_ROUNDS_PER_MINUTE
} from '../constants.ts'
import { PunchError } from '../errors.ts'
import type { NodeEvents, PunchRefusal } from '../events.ts'
import type { Swarm } from '../swarm.ts'
import type { ObservedAddresses } from './observed.ts'
import { PeerBudget } from './budget.ts'
import { localScope, offerable, usableCandidates, type CandidateScope } from './candidates.ts'
import { PUNCH_PROTOCOLS, roundWire } from './round-wire.ts'
import { StandardPeers } from './standard-peers.ts'
import { punchProspect, sideSign } from './prospect.ts'
import { punchRoles } from '../transport/reuseport-tcp.ts'
import { udpHostPort, type HostPort } from '../transport/udx/addr.ts'
import { predictedPorts } from '../transport/udx/birthday.ts'
import { chooseBirthday, publicMapping, type HardNatField } from './hard-nat.ts'
import { connectDirect, isRelayed, isUdx } from './connect-direct.ts'

export const PUNCH_METHOD = 'tcp-simultaneous-open'
/** A round that offers UDP candidates too; a connection it makes is one or the other. */
export const PUNCH_METHOD_WITH_UDP = 'tcp+udp'
export const UDP_PUNCH_METHOD = 'udp-udx'
export const BIRTHDAY_METHOD = 'udp-birthday'

/** What the UDP half of a round needs (holepunch/udp-observe.ts). */
export interface UdpPunch {
  /** Our udx socket's candidates (`/ip4/A/udp/P`), observed mappings first. */
  candidates: () => string[]
  /** Our observed UDP mappings: never dialled on a peer's word. */
  mappings: () => string[]
  /** PROBEs from our udx socket to the peer's candidates, bounded; resolves when done. */
  probe: (candidates: string[], signal: AbortSignal) => Promise<void>
  /** The birthday method's symmetric side: fan out towards `target` (`/ip4/A/udp/P`), dial `peer` over the socket that hears it. */
  birthdayDial?: (target: HostPort, peer: string, signal: AbortSignal) => Promise<unknown>
  /** The birthday method's cone side: PROBEs to ports of `ip`, the `predicted` ones first, then random ones, paced and capped. */
  spray?: (ip: string, signal: AbortSignal, predicted?: number[]) => Promise<unknown>
}

export interface PunchOutcome {
  addr: string
  ms: number
}

export interface HolePuncherInit {
  swarm: Swarm
  observed: ObservedAddresses
  events: NodeEvents
  /** Whether the node has a reason to meet `peer`: only then does it answer its punch requests. */
  mayPunchWith: (peer: string) => boolean
  attemptTimeoutMs?: number
  /** @default PUNCH_ROUNDS_PER_MINUTE */
  roundsPerMinute?: number
  /** The filter's view of this host, read at each round; tests inject interfaces. @default localScope() */
  scope?: (ownAddrs: string[]) => CandidateScope
  /** UDP punching beside TCP (on unless --no-udp-punch); without it rounds are TCP only. */
  udp?: UdpPunch
}

interface Targets { tcp: string[], udp: string[] }

/** `/ip4/A/udp/P` as the udx transport's dial address. */
function udxTarget (candidate: string): string {
  return `${candidate}/udx`
}

function methodOf (addr: string, birthday: boolean): string {
  if (!isUdx(addr)) return PUNCH_METHOD
  return birthday ? BIRTHDAY_METHOD : UDP_PUNCH_METHOD
}

const MINUTE_MS = 60_000

/** The IPs of plain `/ipX/A/tcp/P` candidates. */
function ipsOf (addrs: string[]): string[] {
  return [...new Set(addrs.map(a => multiaddr(a).getComponents()[0]?.value).filter((ip): ip is string => ip != null))]
}

export class HolePuncher {
  private readonly swarm: Swarm
  private readonly observed: ObservedAddresses
  private readonly events: NodeEvents
  private readonly attemptTimeoutMs: number
  private readonly mayPunchWith: (peer: string) => boolean
  private readonly scope: (ownAddrs: string[]) => CandidateScope
  private readonly udp?: UdpPunch
  private readonly method: string
  private readonly rounds: PeerBudget
  /** Refusals are logged a few per peer (and in all) per minute, so a flood of requests is not a flood of log lines. */
  private readonly refusalsLogged = new PeerBudget({ limit: PUNCH_REFUSALS_LOGGED_PER_MINUTE, windowMs: MINUTE_MS })
  private readonly refusalsLoggedTotal = new PeerBudget({ limit: PUNCH_REFUSALS_LOGGED_TOTAL_PER_MINUTE, windowMs: MINUTE_MS })
  private readonly shutdown = new AbortController()
  /** Starts rounds with standard DCUtR peers that reach us over a relay (standard-peers.ts). */
  private readonly standardPeers: StandardPeers

  constructor (init: HolePuncherInit) {
    this.swarm = init.swarm
    this.standardPeers = new StandardPeers({ swarm: init.swarm, puncher: this })
    this.observed = init.observed
    this.events = init.events
    this.mayPunchWith = init.mayPunchWith
    this.attemptTimeoutMs = init.attemptTimeoutMs ?? PUNCH_ATTEMPT_TIMEOUT_MS
    this.rounds = new PeerBudget({ limit: init.roundsPerMinute ?? PUNCH_ROUNDS_PER_MINUTE, windowMs: MINUTE_MS })
    this.scope = init.scope ?? (ownAddrs => localScope({ ownAddrs }))
    if (init.udp != null) this.udp = init.udp
    this.method = init.udp != null ? PUNCH_METHOD_WITH_UDP : PUNCH_METHOD
  }

  async start (): Promise<void> {
    // Both protocols share the checks and the per-peer budget: two doors, one lock.
    await this.swarm.handle(PUNCH_PROTOCOLS, (stream, connection) => {
      const refusal = this.refusal(connection)
      if (refusal != null) {
        this.refuse(stream, connection.remotePeer.toString(), refusal)
        return
      }
      void this.respond(stream, connection)
    }, { runOnLimitedConnection: true, maxInboundStreams: 4 })
    this.standardPeers.start()
  }

  /**
   * Whether we may start a round with `peer` on `connection` of our own accord (a standard
   * peer reached us over a relay and expects us to start DCUtR): the same checks as for a
   * request, one round of the peer's budget used if so.
   */
  mayStart (connection: Connection): PunchRefusal | undefined {
    return this.refusal(connection)
  }

  stop (): void {
    this.shutdown.abort()
    this.standardPeers.stop()
  }

  /**
   * One round as A, the side that wants the direct path. Resolves once one exists.
   * `onUnpromising` hears, once both sides' candidates are known, that the round looks likely
   * to fail (holepunch/prospect.ts); the round goes on all the same.
   */
  async punch (peer: string, attempt: number, onUnpromising?: (reason: string) => void): Promise<PunchOutcome> {
    const started = Date.now()
    const signal = AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(this.attemptTimeoutMs)])
    const { ours, oursUdp, scope } = this.ourSide()
    this.events.emitEvent('holepunch.started', { peer, attempt, method: this.method, role: 'initiator', candidates: [...ours, ...oursUdp] })
    let reported = false
    let birthday = false
    // Ends the birthday method's sockets and probes with the round, however it ends.
    const roundOver = new AbortController()
    signal.addEventListener('abort', () => { roundOver.abort() }, { once: true })
    const unpromising = (reason: string): void => {
      if (reported) return
      reported = true
      this.events.emitEvent('holepunch.unpromising', { peer, attempt, reason })
      onUnpromising?.(reason)
    }
    // Our own side may say so before a byte is exchanged: the tunnel need not wait for the exchange either.
    const mine = sideSign([ours, oursUdp])
    if (mine != null) unpromising(`this side: ${mine}`)
    let stream: Stream | undefined
    try {
      const relayed = this.swarm.getConnections(peerIdFromString(peer)).find(c => c.status === 'open' && isRelayed(c))
      if (relayed == null) throw new PunchError('no relayed connection to coordinate over')
      stream = await relayed.newStream(PUNCH_PROTOCOLS, { signal, runOnLimitedConnection: true })
      const wire = roundWire(stream, signal)
      const sent = Date.now()
      const offer = this.canBirthday() && oursUdp.length > 0
      await wire.write({ type: 'connect', addrs: ours, ...(oursUdp.length > 0 ? { udp: oursUdp } : {}), attempt, ...(offer ? { hardNat: 'offer' as const } : {}) })
      const reply = await wire.read()
      if (reply.type !== 'connect') throw new PunchError('peer answered connect with sync')
      const rtt = Date.now() - sent
      await wire.write({ type: 'sync' })
      const prospect = punchProspect([ours, oursUdp], [reply.addrs, this.udp != null ? reply.udp ?? [] : []])
      if (!prospect.promising) unpromising(prospect.reason)
      await stream.close({ signal })
      const theirs = this.dialable(reply.addrs, reply.udp ?? [], scope, reply.punchgate === true)
      // B dials our udx socket at once: our PROBEs open our NAT towards B's candidates meanwhile.
      if (theirs.udp.length > 0) void this.udp?.probe(theirs.udp, signal).catch(() => {})
      const fansOut = !offer ? undefined : reply.hardNat === 'receiver-fans-out' ? 'initiator' : reply.hardNat === 'sender-fans-out' ? 'responder' : undefined
      birthday = fansOut != null && this.birthday(peer, attempt, fansOut === 'initiator', theirs.udp, roundOver.signal, rtt / 2)
      await delay(rtt / 2, undefined, { signal })
      // The spec's role on a simultaneous open; with a standard peer also a plain dial, which
      // its listener takes as an ordinary client (see the header).
      const dials = theirs.tcp.map(addr => ({ addr, initiator: false, reusePort: true }))
      if (reply.punchgate !== true) dials.push(...theirs.tcp.map(addr => ({ addr, initiator: true, reusePort: false })))
      const addr = await connectDirect(this.swarm, peer, dials, signal)
      const outcome = { addr, ms: Date.now() - started }
      this.events.emitEvent('holepunch.succeeded', { peer, attempt, method: methodOf(addr, birthday), role: 'initiator', ...outcome })
      return outcome
    } catch (err) {
      stream?.abort(err as Error)
      const error = signal.aborted && !this.shutdown.signal.aborted ? `no direct connection within ${this.attemptTimeoutMs} ms` : (err as Error).message
      this.events.emitEvent('holepunch.failed', { peer, attempt, method: this.method, role: 'initiator', ms: Date.now() - started, error })
      throw new PunchError(error)
    } finally {
      roundOver.abort()
    }
  }

  /** B's side of a round: answer, then dial at once on sync. */
  private async respond (stream: Stream, connection: Connection): Promise<void> {
    const started = Date.now()
    const peer = connection.remotePeer.toString()
    const signal = AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(this.attemptTimeoutMs)])
    let attempt = 1
    let birthday = false
    let udpWon = false
    const roundOver = new AbortController()
    const tcpOver = new AbortController()
    signal.addEventListener('abort', () => { roundOver.abort(); tcpOver.abort() }, { once: true })
    try {
      const wire = roundWire(stream, signal)
      const connect = await wire.read()
      if (connect.type !== 'connect') throw new PunchError('expected connect')
      attempt = connect.attempt ?? 1
      const { ours, oursUdp, scope } = this.ourSide()
      this.events.emitEvent('holepunch.started', { peer, attempt, method: this.method, role: 'responder', candidates: [...ours, ...oursUdp] })
      const fansOut = connect.hardNat === 'offer' && this.canBirthday() ? chooseBirthday(connect.udp ?? [], oursUdp) : undefined
      const hardNat: HardNatField | undefined = fansOut === 'responder' ? 'sender-fans-out' : fansOut === 'initiator' ? 'receiver-fans-out' : undefined
      await wire.write({ type: 'connect', addrs: ours, ...(oursUdp.length > 0 ? { udp: oursUdp } : {}), ...(hardNat != null ? { hardNat } : {}) })
      const sync = await wire.read()
      if (sync.type !== 'sync') throw new PunchError('expected sync')
      const theirs = this.dialable(connect.addrs, connect.udp ?? [], scope, connect.punchgate === true)
      birthday = fansOut != null && this.birthday(peer, attempt, fansOut === 'responder', theirs.udp, roundOver.signal, 0)
      // Our listener may accept A's dial before ours leaves (a full-cone or public side here):
      // a Punchgate peer dialled as the responder, so that connection, too, is upgraded with us
      // as the initiator. A standard peer's dial is an ordinary client's (see the header).
      // Expected until the TCP half is over: when UDP wins, that is the round's deadline.
      if (connect.punchgate === true) {
        punchRoles(this.swarm.services.internals.transportManager.getTransports())?.expectInbound(connection.remotePeer, ipsOf(theirs.tcp), tcpOver.signal)
      }
      // Over udx we dial as the initiator too; A's socket accepts (its PROBEs opened its NAT).
      const dials = [...theirs.tcp, ...theirs.udp.map(udxTarget)].map(a => ({ addr: a, initiator: true, reusePort: true }))
      const addr = await connectDirect(this.swarm, peer, dials, signal)
      udpWon = isUdx(addr)
      this.events.emitEvent('holepunch.succeeded', { peer, attempt, method: methodOf(addr, birthday), role: 'responder', addr, ms: Date.now() - started })
    } catch (err) {
      stream.abort(err as Error)
      const error = signal.aborted && !this.shutdown.signal.aborted ? `no direct connection within ${this.attemptTimeoutMs} ms` : (err as Error).message
      this.events.emitEvent('holepunch.failed', { peer, attempt, method: this.method, role: 'responder', ms: Date.now() - started, error })
    } finally {
      roundOver.abort()
      if (!udpWon) tcpOver.abort()
    }
  }

  private canBirthday (): boolean {
    return this.udp?.birthdayDial != null && this.udp.spray != null
  }

  /**
   * Starts our half of the birthday method (hard-nat.ts) in the background: fan out towards
   * the peer's public UDP mapping, or spray its IP after `sprayDelayMs`, the ports after those
   * its candidates show first (port prediction, birthday.ts `predictedPorts`). Only towards the peer's filtered candidates; false (nothing started) when it
   * offered no public one. A connection it makes reaches the round through connectDirect's
   * `connection:open`.
   */
  private birthday (peer: string, attempt: number, weFanOut: boolean, usableUdp: string[], signal: AbortSignal, sprayDelayMs: number): boolean {
    const target = publicMapping(usableUdp)
    const udp = this.udp
    if (target == null || udp?.birthdayDial == null || udp.spray == null) return false
    this.events.emitEvent('holepunch.birthday', { peer, attempt, role: weFanOut ? 'fan-out' : 'spray', target: `${target.host}:${target.port}` })
    if (weFanOut) {
      void udp.birthdayDial(target, peer, signal).catch(() => {})
    } else {
      const observed = usableUdp.map(udpHostPort).filter((t): t is HostPort => t != null && t.host === target.host).map(t => t.port)
      const predicted = predictedPorts(observed)
      void delay(sprayDelayMs, undefined, { signal }).then(async () => await udp.spray?.(target.host, signal, predicted)).catch(() => {})
    }
    return true
  }

  /** Why a punch request on `connection` is not answered, if it is not; one round of the peer's budget used if it is. */
  private refusal (connection: Connection): PunchRefusal | undefined {
    const peer = connection.remotePeer.toString()
    if (!isRelayed(connection)) return 'not-relayed'
    if (!this.mayPunchWith(peer)) return 'not-known'
    if (!this.rounds.take(peer)) return 'too-many-rounds'
    return undefined
  }

  /** Resets the stream before reading a byte of it: nothing the peer sent is looked at, nothing dialled. */
  private refuse (stream: Stream, peer: string, reason: PunchRefusal): void {
    stream.abort(new PunchError(`punch request refused: ${reason}`))
    if (this.refusalsLogged.take(peer) && this.refusalsLoggedTotal.take('')) {
      this.events.emitEvent('holepunch.refused', { peer, reason })
    }
  }

  /** Our candidates as we send them, and the filter's view of this host for the peer's. */
  private ourSide (): { ours: string[], oursUdp: string[], scope: CandidateScope } {
    const mine = this.observed.candidates()
    const scope = this.scope([...mine, ...this.udp?.mappings() ?? []])
    return { ours: offerable(mine, scope), oursUdp: offerable(this.udp?.candidates() ?? [], scope), scope }
  }

  /**
   * The peer's candidates this node may dial or probe. None is a failed round, not a dial, with
   * a Punchgate peer. A standard peer offers only verified addresses (often none, or only private
   * ones) and dials ours anyway: the round then waits for its dial to reach our listener.
   */
  private dialable (addrs: string[], udp: string[], scope: CandidateScope, punchgate: boolean): Targets {
    // Without UDP punching here the peer's UDP candidates are ignored.
    const offered = this.udp != null ? udp : []
    const total = addrs.length + offered.length
    const targets = { tcp: usableCandidates(addrs, scope), udp: usableCandidates(offered, scope) }
    if (!punchgate) return targets
    if (total === 0) throw new PunchError('peer has no candidate addresses')
    if (targets.tcp.length + targets.udp.length === 0) throw new PunchError(`none of the peer's ${total} candidate addresses may be dialled (loopback, private outside our subnets, or ours)`)
    return targets
  }
}
