/**
 * The public node's side of `/punchgate/reach/1.0.0` (wire.ts, docs/protocol.md): a peer
 * asks "can you reach me?" and we TCP-connect back to it.
 *
 * Who may ask: any peer on a direct connection (a stranger too). What it can make us do:
 * open at most REACH_MAX_PORTS plain TCP connections, from an ephemeral port, to the remote
 * IP of the very connection the request came on (never an address it names), each closed
 * as soon as it connects or after REACH_DIAL_TIMEOUT_MS. How much: one request per peer and
 * REACH_ASKS_PER_IP per remote IP per REACH_ASK_INTERVAL_MS, REACH_MAX_DIALS_IN_FLIGHT dials
 * in flight in all, REACH_TIMEOUT_MS per stream, one inbound stream per connection. What we
 * keep: the peers found reachable (at most REACH_MAX_VERIFIED), for verifiedPublicPeers().
 *
 * The dial-back is plain node:net, not the reuseport transport: a port-restricted cone
 * NAT lets in packets from the address and port its host sent to, which for the libp2p
 * transport would be our listen port, so a dial from it could pass where a stranger's
 * would not. From an ephemeral port, only a port that is really open answers.
 */
import { connect } from 'node:net'
import type { Connection, Stream } from '@libp2p/interface'
import type { LengthPrefixedStream } from '@libp2p/utils'
import type { Libp2p } from 'libp2p'
import {
  REACH_ASK_INTERVAL_MS, REACH_ASKS_PER_IP, REACH_DIAL_TIMEOUT_MS, REACH_MAX_DIALS_IN_FLIGHT, REACH_MAX_VERIFIED,
  REACH_PROTOCOL, REACH_TIMEOUT_MS, REACH_VERIFIED_TTL_MS
} from '../constants.ts'
import { PeerBudget } from '../holepunch/budget.ts'
import { pathOf } from '../protocol/expose.ts'
import { decodeRequest, encodeAnswer, frames, type ReachAnswer, type ReachRefusal } from './wire.ts'

/** Connects to `host:port` and says whether the TCP handshake completed before `signal` aborted. */
export type DialBack = (host: string, port: number, signal: AbortSignal) => Promise<boolean>

/** A public peer our probe reached: its peer id and the addresses that answered (no /p2p suffix). */
export interface VerifiedPeer {
  peer: string
  addrs: string[]
}

/** One probe carried out, for the node's events. */
export interface ProbeReport extends ReachAnswer {
  peer: string
}

export interface ReachServerInit {
  /** Whether `peer` still has an open connection to us: verifiedPublicPeers() lists only those. */
  connected: (peer: string) => boolean
  /** @default tcpDialBack */
  dialBack?: DialBack
  onProbe?: (report: ProbeReport) => void
  now?: () => number
  /** @default REACH_ASK_INTERVAL_MS */
  intervalMs?: number
  /** @default REACH_DIAL_TIMEOUT_MS */
  dialTimeoutMs?: number
  /** @default REACH_TIMEOUT_MS */
  timeoutMs?: number
  /** @default REACH_MAX_DIALS_IN_FLIGHT */
  maxInFlight?: number
}

/** The connection fields the handler reads. */
export type ProbeConnection = Pick<Connection, 'remotePeer' | 'direct' | 'remoteAddr'>

export class ReachServer {
  private readonly init: ReachServerInit
  private readonly now: () => number
  private readonly dialBack: DialBack
  private readonly perPeer: PeerBudget
  private readonly perIp: PeerBudget
  private inFlight = 0
  /** Peer id -> addresses that answered and when; insertion order = oldest first. */
  private readonly verified = new Map<string, { addrs: string[], at: number }>()

  constructor (init: ReachServerInit) {
    this.init = init
    this.now = init.now ?? Date.now
    this.dialBack = init.dialBack ?? tcpDialBack
    const windowMs = init.intervalMs ?? REACH_ASK_INTERVAL_MS
    this.perPeer = new PeerBudget({ limit: 1, windowMs, now: this.now })
    this.perIp = new PeerBudget({ limit: REACH_ASKS_PER_IP, windowMs, now: this.now })
  }

  /** Probe dial-backs running now. */
  get dialsInFlight (): number {
    return this.inFlight
  }

  /** Registers the handler (a public node). */
  async serve (node: Libp2p): Promise<void> {
    // 2: a re-ask may open its stream while the last one is still closing; the per-peer budget answers it.
    await node.handle(REACH_PROTOCOL, this.handler, { maxInboundStreams: 2, maxOutboundStreams: 1, runOnLimitedConnection: false })
  }

  /** Unregisters it and forgets every verified peer (a node that steps back to private). */
  async close (node: Libp2p): Promise<void> {
    await node.unhandle(REACH_PROTOCOL)
    this.verified.clear()
  }

  /** The peers a probe found reachable within REACH_VERIFIED_TTL_MS and still connected, newest first. */
  verifiedPublicPeers (): VerifiedPeer[] {
    const now = this.now()
    const peers: VerifiedPeer[] = []
    for (const [peer, entry] of this.verified) {
      if (now - entry.at > REACH_VERIFIED_TTL_MS) this.verified.delete(peer)
      else if (this.init.connected(peer)) peers.push({ peer, addrs: [...entry.addrs] })
    }
    return peers.reverse()
  }

  /** The stream handler serve() registers (tests call it with a connection of their making). */
  readonly handler = async (stream: Stream, connection: ProbeConnection): Promise<void> => {
    const signal = AbortSignal.timeout(this.init.timeoutMs ?? REACH_TIMEOUT_MS)
    try {
      const lp = frames(stream)
      const answer = await this.probe(lp, connection, signal)
      await lp.write(encodeAnswer(answer), { signal })
      await lp.unwrap().close({ signal })
    } catch (err) {
      stream.abort(err as Error)
    }
  }

  private async probe (lp: LengthPrefixedStream<Stream>, connection: ProbeConnection, signal: AbortSignal): Promise<ReachAnswer | { error: ReachRefusal }> {
    const peer = connection.remotePeer.toString()
    const ip = pathOf(connection) === 'direct' ? ipOf(connection) : undefined
    if (ip == null) return { error: 'not-direct' }
    if (!this.perPeer.take(peer)) return { error: 'too-soon' }
    const ports = decodeRequest((await lp.read({ signal })).subarray())
    if (ports == null) return { error: 'bad-request' }
    if (!this.perIp.take(ip.host)) return { error: 'too-soon' }
    const maxInFlight = this.init.maxInFlight ?? REACH_MAX_DIALS_IN_FLIGHT
    if (this.inFlight + ports.length > maxInFlight) return { error: 'busy' }
    this.inFlight += ports.length
    let results: boolean[]
    try {
      const dialSignal = AbortSignal.any([signal, AbortSignal.timeout(this.init.dialTimeoutMs ?? REACH_DIAL_TIMEOUT_MS)])
      results = await Promise.all(ports.map(async port => this.dialBack(ip.host, port, dialSignal).catch(() => false)))
    } finally {
      this.inFlight -= ports.length
    }
    const answer: ReachAnswer = {
      ip: ip.host,
      reachable: ports.filter((_, i) => results[i] === true),
      unreachable: ports.filter((_, i) => results[i] !== true)
    }
    this.remember(peer, ip, answer.reachable)
    this.init.onProbe?.({ peer, ...answer })
    return answer
  }

  private remember (peer: string, ip: { host: string, family: 4 | 6 }, reachable: number[]): void {
    this.verified.delete(peer)
    if (reachable.length === 0) return
    this.verified.set(peer, { addrs: reachable.map(port => `/ip${ip.family}/${ip.host}/tcp/${port}`), at: this.now() })
    while (this.verified.size > REACH_MAX_VERIFIED) this.verified.delete(this.verified.keys().next().value as string)
  }
}

/** The IP address of a connection's remote end: the only address a probe ever dials. */
function ipOf (connection: ProbeConnection): { host: string, family: 4 | 6 } | undefined {
  const ip = connection.remoteAddr.getComponents()[0]
  if (ip?.value == null || (ip.name !== 'ip4' && ip.name !== 'ip6')) return undefined
  return { host: ip.value, family: ip.name === 'ip6' ? 6 : 4 }
}

/** The dial-back: a plain TCP connect from an ephemeral port, closed as soon as it connects. */
export async function tcpDialBack (host: string, port: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false
  return new Promise(resolve => {
    const socket = connect({ host, port })
    const done = (connected: boolean): void => {
      signal.removeEventListener('abort', onAbort)
      socket.destroy()
      resolve(connected)
    }
    const onAbort = (): void => done(false)
    signal.addEventListener('abort', onAbort, { once: true })
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}
