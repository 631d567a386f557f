/**
 * Our UDP socket's NAT mapping, as a peer sees it, for the UDP half of a punch round
 * (`/punchgate/udp-observe/1.0.0`, docs/protocol.md). STUN-like, but the answer rides an
 * authenticated libp2p stream, so the observer never sends UDP to anyone:
 *
 *   asker <- observer   {"port": P, "token": T}   the observer's udx port, a fresh 16-byte token
 *   asker -> observer   OBSERVE datagrams with T from our udx socket to the observer's IP:P
 *   asker <- observer   {"addr": "/ip4/X/udp/Y"}  where the datagram came from: our mapping
 *
 * We ask every peer that serves the protocol over a direct connection (a bootstrap, over TCP
 * or QUIC alike), at most once per peer per ASK_INTERVAL_MS, and keep the newest few
 * mappings. Who may ask us: any peer on a direct connection, at most ASKS_PER_PEER_PER_MINUTE
 * per peer and MAX_CONCURRENT_ANSWERS at once; an answer costs a token kept ANSWER_TIMEOUT_MS.
 */
import { setTimeout as delay } from 'node:timers/promises'
import { randomBytes } from 'node:crypto'
import { lpStream } from '@libp2p/utils'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'
import { MAX_FRAME_BYTES, MAX_PUNCH_CANDIDATES, UDP_OBSERVE_PROTOCOL } from '../constants.ts'
import { ProtocolError } from '../errors.ts'
import { udpCandidate, udpHostPort, type HostPort } from '../transport/udx/addr.ts'
import { OBSERVE_TOKEN_BYTES } from '../transport/udx/datagrams.ts'
import type { UdxTransport } from '../transport/udx/transport.ts'
import { PeerBudget } from './budget.ts'
import type { UdpPunch } from './puncher.ts'

const ANSWER_TIMEOUT_MS = 3_000
const OBSERVE_SENDS = 10
const OBSERVE_SEND_INTERVAL_MS = 200
const ASK_INTERVAL_MS = 60_000
const ASKS_PER_PEER_PER_MINUTE = 4
const MAX_CONCURRENT_ANSWERS = 16

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

function isDirect (connection: Connection): boolean {
  return connection.limits == null && !connection.remoteAddr.toString().includes('/p2p-circuit')
}

function frame (value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value))
}

function parse (bytes: Uint8Array): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(decoder.decode(bytes))
    if (value != null && typeof value === 'object') return value as Record<string, unknown>
  } catch {}
  throw new ProtocolError('udp-observe frame is not a JSON object')
}

/** The IPv4 address a connection reached the peer at (TCP or QUIC alike). */
function remoteIp (connection: Connection): string | undefined {
  const first = connection.remoteAddr.getComponents()[0]
  return first?.name === 'ip4' ? first.value : undefined
}

export class UdpObserver implements UdpPunch {
  private readonly swarm: Libp2p
  private readonly udx: UdxTransport
  /** `/ip4/X/udp/Y` -> when observed; most recent last. */
  private readonly seen = new Map<string, number>()
  private readonly askedAt = new Map<string, number>()
  private readonly answersPerPeer = new PeerBudget({ limit: ASKS_PER_PEER_PER_MINUTE, windowMs: 60_000 })
  private answering = 0
  private readonly shutdown = new AbortController()

  constructor (swarm: Libp2p, udx: UdxTransport) {
    this.swarm = swarm
    this.udx = udx
  }

  async start (): Promise<void> {
    await this.swarm.handle(UDP_OBSERVE_PROTOCOL, (stream, connection) => { void this.answer(stream, connection) }, { maxInboundStreams: 1, maxOutboundStreams: 1 })
    this.swarm.addEventListener('peer:identify', evt => {
      const { connection, protocols, peerId } = evt.detail
      if (!protocols.includes(UDP_OBSERVE_PROTOCOL) || !isDirect(connection)) return
      const peer = peerId.toString()
      const last = this.askedAt.get(peer)
      if (last != null && Date.now() - last < ASK_INTERVAL_MS) return
      this.askedAt.set(peer, Date.now())
      if (this.askedAt.size > 1024) this.askedAt.delete(this.askedAt.keys().next().value as string)
      void this.ask(connection).catch(() => {})
    })
  }

  stop (): void {
    this.shutdown.abort()
  }

  /** Our UDP candidates (`/ip4/A/udp/P`): observed mappings, newest first, then our interfaces' addresses. */
  candidates (): string[] {
    const observed = [...this.seen.keys()].reverse()
    const own = this.udx.localAddresses().map(udpCandidate)
    return [...new Set([...observed, ...own])].slice(0, MAX_PUNCH_CANDIDATES)
  }

  /** PROBEs to a peer's UDP candidates (already filtered) from our udx socket: the UDP half of a punch round. */
  async probe (candidates: string[], signal: AbortSignal): Promise<void> {
    await this.udx.probe(candidates.map(udpHostPort).filter((t): t is HostPort => t != null), signal)
  }

  /** The birthday method's symmetric side (transport/udx/birthday.ts). */
  async birthdayDial (target: HostPort, peer: string, signal: AbortSignal): Promise<unknown> {
    return await this.udx.birthdayDial(target, peer, signal)
  }

  /** The birthday method's cone side: PROBEs to the peer's public IP, the predicted ports first, then random ones. */
  async spray (ip: string, signal: AbortSignal, predicted?: number[]): Promise<number> {
    return await this.udx.sprayProbes(ip, signal, predicted)
  }

  /** Our observed mappings only (the candidate filter's "ours"). */
  mappings (): string[] {
    return [...this.seen.keys()]
  }

  /** Asks the peer on `connection` where our UDP socket's datagrams come from. */
  async ask (connection: Connection): Promise<string | undefined> {
    const ip = remoteIp(connection)
    if (ip == null) return undefined
    const signal = AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(ANSWER_TIMEOUT_MS + 1_000)])
    const stream = await connection.newStream(UDP_OBSERVE_PROTOCOL, { signal })
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
      const offer = parse((await lp.read({ signal })).subarray())
      const port = offer.port
      const token = typeof offer.token === 'string' ? Buffer.from(offer.token, 'base64') : undefined
      if (typeof port !== 'number' || !Number.isInteger(port) || port <= 0 || port > 65535 || token?.byteLength !== OBSERVE_TOKEN_BYTES) {
        throw new ProtocolError('udp-observe offer needs a port and a 16-byte token')
      }
      const answered = new AbortController()
      const sending = (async () => {
        for (let i = 0; i < OBSERVE_SENDS && !answered.signal.aborted; i++) {
          this.udx.sendObserve(token, { host: ip, port })
          await delay(OBSERVE_SEND_INTERVAL_MS, undefined, { signal: answered.signal }).catch(() => {})
        }
      })()
      try {
        const reply = parse((await lp.read({ signal })).subarray())
        const addr = typeof reply.addr === 'string' && udpHostPort(reply.addr) != null ? udpCandidate(udpHostPort(reply.addr)!) : undefined
        if (addr == null) throw new ProtocolError('udp-observe answer needs an /ip4/A/udp/P address')
        this.seen.delete(addr)
        this.seen.set(addr, Date.now())
        while (this.seen.size > MAX_PUNCH_CANDIDATES) this.seen.delete(this.seen.keys().next().value as string)
        await stream.close({ signal }).catch(() => {})
        return addr
      } finally {
        answered.abort()
        await sending
      }
    } catch (err) {
      stream.abort(err as Error)
      throw err
    }
  }

  /** The observer's side: a token, then where its datagram came from. */
  private async answer (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    const port = this.udx.port
    if (port == null || !isDirect(connection) || this.answering >= MAX_CONCURRENT_ANSWERS || !this.answersPerPeer.take(peer)) {
      stream.abort(new ProtocolError('udp-observe refused'))
      return
    }
    this.answering++
    const signal = AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(ANSWER_TIMEOUT_MS)])
    try {
      const token = randomBytes(OBSERVE_TOKEN_BYTES)
      const seen = this.udx.expectObserve(token, signal)
      if (seen == null) throw new ProtocolError('udp-observe busy')
      seen.catch(() => {}) // awaited below; a failed write must not leave its rejection unhandled
      const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
      await lp.write(frame({ port, token: token.toString('base64') }), { signal })
      const from: HostPort = await seen
      await lp.write(frame({ addr: udpCandidate(from) }), { signal })
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err as Error)
    } finally {
      this.answering--
    }
  }
}
