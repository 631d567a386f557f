/**
 * UDP punching's carrier: a libp2p transport over udx-native (reliable, congestion-
 * controlled streams over UDP, what Holepunch's hyperdht punches with). Why this carrier
 * and not WebRTC or QUIC: docs/nat-traversal.md, "UDP punching".
 *
 * One UDP socket per node (and its IPv6 twin on the same port: sockets.ts) both accepts
 * and dials, so the NAT mapping an observer saw for it (holepunch/udp-observe.ts) is the one
 * a peer must send to. udx has no handshake of its own: handshake.ts adds SYN/SYN-ACK; each
 * side then connects a udx stream to the other's, and libp2p's upgrader secures it (TLS or
 * Noise) and muxes it (yamux) like a TCP connection. The resent SYNs are also the punch:
 * the first ones open the dialler's NAT, and once the peer's PROBEs (`probe()`) have opened
 * its own, the next SYN gets through.
 *
 * The sockets are opened at start and are not a libp2p listener: nothing announces them
 * (punch candidates carry their addresses, docs/protocol.md), and libp2p never dials them on
 * its own.
 *
 * What a stranger can make us do: a SYN from anyone gets a SYN-ACK of the same size and an
 * inbound upgrade under libp2p's usual inbound limits and gater (handshake.ts has the caps);
 * at most MAX_PENDING_INBOUND such upgrades at once. PROBE and stray datagrams are dropped
 * unread; OBSERVE only completes a token we handed out. We send PROBEs only where the
 * puncher says (filtered candidates, PROBES_PER_TARGET each, MAX_PROBE_TARGETS at once).
 */
import { randomBytes } from 'node:crypto'
import { networkInterfaces } from 'node:os'
import { setTimeout as delay } from 'node:timers/promises'
import { serviceCapabilities, transportSymbol, TimeoutError } from '@libp2p/interface'
import type { ComponentLogger, Connection, CreateListenerOptions, DialTransportOptions, Listener, Logger, Startable, Transport, Upgrader } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type UDX from 'udx-native'
import type { UdxAddress, UdxSocket, UdxStream } from 'udx-native'
import { udxAddr, udxHostPort, type HostPort } from './addr.ts'
import { UdxConnection } from './connection.ts'
import { decodeDatagram, encodeDatagram, PROBE_TOKEN_BYTES } from './datagrams.ts'
import { fanOut, spray } from './birthday.ts'
import { Handshakes } from './handshake.ts'
import { UdxSockets } from './sockets.ts'

const MAX_PENDING_INBOUND = 32
export const PROBE_INTERVAL_MS = 100
export const PROBES_PER_TARGET = 10
export const MAX_PROBE_TARGETS = 8
const MAX_OBSERVE_WAITERS = 64
/** udx keepalive on an idle connection: keeps NAT mappings (often 30 s for UDP) alive. */
const KEEPALIVE_MS = 15_000

export interface UdxTransportInit {
  /** UDP port of the socket; 0 (default) picks one. */
  port?: number
  /** @default '0.0.0.0' */
  host?: string
}

export interface UdxTransportComponents {
  upgrader: Upgrader
  logger: ComponentLogger
}

export class UdxTransport implements Transport, Startable {
  readonly [transportSymbol] = true
  readonly [Symbol.toStringTag] = '@punchgate/udx'
  readonly [serviceCapabilities] = ['@libp2p/transport']
  private readonly components: UdxTransportComponents
  private readonly init: UdxTransportInit
  private readonly log: Logger
  private udx?: UDX
  private sockets?: UdxSockets
  private readonly streamIds = new Set<number>()
  private readonly handshakes = new Handshakes()
  private readonly observeWaiters = new Map<string, (from: HostPort) => void>()
  private pendingInbound = 0
  /** Birthday fan-out sockets (birthday.ts), open or winning; closed on stop. One fan-out and one spray at a time. */
  private readonly extraSockets = new Set<UdxSocket>()
  private fanningOut = false
  private spraying = false
  private shutdown = new AbortController()

  constructor (components: UdxTransportComponents, init: UdxTransportInit = {}) {
    this.components = components
    this.init = init
    this.log = components.logger.forComponent('punchgate:udx')
  }

  async start (): Promise<void> {
    const { default: Udx } = await import('udx-native')
    this.shutdown = new AbortController()
    this.udx = new Udx()
    this.sockets = UdxSockets.open(this.udx, this.init.port ?? 0, this.init.host ?? '0.0.0.0', (socket, message, from) => { this.onDatagram(socket, message, from) }, this.log)
  }

  /** The main (IPv4) socket, once started. */
  private get socket (): UdxSocket | undefined {
    return this.sockets?.v4
  }

  /** The socket that sends to `host`: the IPv6 one for an IPv6 address. */
  private socketFor (host: string): UdxSocket | undefined {
    return this.sockets?.for(host)
  }

  async stop (): Promise<void> {
    this.shutdown.abort()
    const own = this.sockets
    this.sockets = undefined
    if (own == null) return
    // Closing the socket waits for its streams: destroy them (libp2p has closed its connections by now).
    const sockets = [...own.all(), ...this.extraSockets]
    this.extraSockets.clear()
    for (const s of sockets) {
      for (const stream of (s as unknown as { streams: Set<UdxStream> }).streams ?? []) stream.destroy()
    }
    await Promise.all(sockets.map(async s => { await s.close().catch(() => {}) }))
  }

  /** The socket's local port, once started. */
  get port (): number | undefined {
    return this.socket?.address().port
  }

  /** This host's own addresses for the sockets (`/ipX/A/udp/P` form is the caller's): sockets.ts. */
  localAddresses (interfaces = networkInterfaces): HostPort[] {
    return this.sockets?.localAddresses(interfaces) ?? []
  }

  listenFilter (): Multiaddr[] {
    return []
  }

  dialFilter (multiaddrs: Multiaddr[]): Multiaddr[] {
    return multiaddrs.filter(ma => udxHostPort(ma) != null)
  }

  createListener (_options: CreateListenerOptions): Listener {
    throw new Error('the udx transport listens on its own socket, not through libp2p')
  }

  async dial (ma: Multiaddr, options: DialTransportOptions): Promise<Connection> {
    const target = udxHostPort(ma)
    const udx = this.udx
    if (target == null) throw new Error(`not a udx address: ${ma.toString()}`)
    const socket = this.socketFor(target.host)
    if (socket == null || udx == null) throw new Error(this.socket == null ? 'udx transport not started' : `no udx socket for ${target.host}`)
    const signal = AbortSignal.any([options.signal, this.shutdown.signal])
    const streamId = this.newStreamId()
    try {
      const remoteStreamId = await this.handshakes.dial(socket, target, streamId, signal)
      const stream = udx.createStream(streamId)
      stream.connect(socket, remoteStreamId, target.port, target.host)
      const maConn = this.connection(stream, 'outbound', ma)
      try {
        return await options.upgrader.upgradeOutbound(maConn, options)
      } catch (err) {
        maConn.abort(err as Error)
        throw err
      }
    } catch (err) {
      this.streamIds.delete(streamId)
      throw err
    }
  }

  /**
   * Sends PROBEs to `targets` from our socket (opening our NAT towards them) every
   * PROBE_INTERVAL_MS, PROBES_PER_TARGET times or until `signal` aborts. Resolves when done.
   */
  async probe (targets: HostPort[], signal: AbortSignal): Promise<void> {
    if (this.socket == null) return
    const datagram = encodeDatagram({ type: 'probe', token: randomBytes(PROBE_TOKEN_BYTES) })
    const list = targets.slice(0, MAX_PROBE_TARGETS)
    for (let i = 0; i < PROBES_PER_TARGET && !signal.aborted && !this.shutdown.signal.aborted; i++) {
      for (const t of list) this.socketFor(t.host)?.trySend(datagram, t.port, t.host)
      await sleep(PROBE_INTERVAL_MS, signal).catch(() => {})
    }
  }

  /**
   * The symmetric side of the birthday method (birthday.ts): fans out sockets towards
   * `target` (the peer's mapped udx address), and once one hears the peer, dials `peer` over
   * that socket (the peer's main socket accepts). The connection then runs over the winning
   * socket, which closes with it. Rejects when `signal` aborts first, or when a fan-out runs already.
   */
  async birthdayDial (target: HostPort, peer: string, signal: AbortSignal): Promise<Connection> {
    const udx = this.udx
    if (udx == null || this.socket == null) throw new Error('udx transport not started')
    if (this.fanningOut) throw new Error('a birthday fan-out runs already')
    const all = AbortSignal.any([signal, this.shutdown.signal])
    this.fanningOut = true
    let socket: UdxSocket
    try {
      socket = await fanOut(udx, target, { signal: all, open: this.extraSockets })
    } finally {
      this.fanningOut = false
    }
    const release = (): void => {
      this.extraSockets.delete(socket)
      void socket.close().catch(() => {})
    }
    socket.on('message', (message, from) => {
      const d = decodeDatagram(message)
      if (d?.type === 'syn-ack') this.handshakes.onSynAck(from, d.nonce, d.streamId)
    })
    const streamId = this.newStreamId()
    try {
      const remoteStreamId = await this.handshakes.dial(socket, target, streamId, all)
      const stream = udx.createStream(streamId)
      stream.connect(socket, remoteStreamId, target.port, target.host)
      stream.once('close', release)
      const maConn = this.connection(stream, 'outbound', udxAddr(target).encapsulate(`/p2p/${peer}`))
      try {
        return await this.components.upgrader.upgradeOutbound(maConn, { signal: all })
      } catch (err) {
        maConn.abort(err as Error)
        throw err
      }
    } catch (err) {
      this.streamIds.delete(streamId)
      release()
      throw err
    }
  }

  /**
   * The cone side of the birthday method: PROBEs from our socket to ports of `ip` (the peer's
   * filtered public IP), the `predicted` ones first, then random ones, paced and capped
   * (birthday.ts `spray`). A hit opens our NAT to
   * the peer's winning socket, whose SYN then reaches our socket like any dial. Resolves with
   * the number sent; 0 when a spray runs already.
   */
  async sprayProbes (ip: string, signal: AbortSignal, predicted: number[] = []): Promise<number> {
    const socket = this.socket
    if (socket == null || this.spraying) return 0
    this.spraying = true
    try {
      return await spray(socket, ip, AbortSignal.any([signal, this.shutdown.signal]), undefined, predicted)
    } finally {
      this.spraying = false
    }
  }

  /** Sends one OBSERVE datagram with `token` to an observer (holepunch/udp-observe.ts). */
  sendObserve (token: Uint8Array, to: HostPort): void {
    this.socketFor(to.host)?.trySend(encodeDatagram({ type: 'observe', token }), to.port, to.host)
  }

  /**
   * Waits for an OBSERVE datagram carrying `token`; resolves with where it came from (the
   * sender's NAT mapping of its socket). False when too many wait already.
   */
  expectObserve (token: Uint8Array, signal: AbortSignal): Promise<HostPort> | undefined {
    if (this.observeWaiters.size >= MAX_OBSERVE_WAITERS) return undefined
    const key = Buffer.from(token).toString('hex')
    return new Promise<HostPort>((resolve, reject) => {
      const done = (): void => { this.observeWaiters.delete(key) }
      this.observeWaiters.set(key, from => { done(); resolve(from) })
      signal.addEventListener('abort', () => { done(); reject(new TimeoutError('no observe datagram')) }, { once: true })
    })
  }

  private onDatagram (socket: UdxSocket, message: Buffer, from: UdxAddress): void {
    const datagram = decodeDatagram(message)
    if (datagram == null || from.family !== this.sockets?.family(socket)) return
    switch (datagram.type) {
      case 'syn': this.onSyn(socket, datagram.nonce, datagram.streamId, from); break
      case 'syn-ack': this.handshakes.onSynAck(from, datagram.nonce, datagram.streamId); break
      case 'observe': this.observeWaiters.get(Buffer.from(datagram.token).toString('hex'))?.({ host: from.host, port: from.port }); break
      case 'probe': break
    }
  }

  private onSyn (socket: UdxSocket, nonce: number, remoteStreamId: number, from: UdxAddress): void {
    const udx = this.udx
    if (udx == null || this.socket == null) return
    const answer = this.handshakes.answer(from, nonce, this.pendingInbound < MAX_PENDING_INBOUND, () => this.newStreamId())
    if (answer == null) return
    const synAck = encodeDatagram({ type: 'syn-ack', nonce, streamId: answer.streamId })
    if (!answer.fresh) {
      socket.trySend(synAck, from.port, from.host)
      return
    }
    const stream = udx.createStream(answer.streamId)
    stream.connect(socket, remoteStreamId, from.port, from.host)
    socket.trySend(synAck, from.port, from.host)
    const maConn = this.connection(stream, 'inbound', udxAddr(from))
    this.pendingInbound++
    this.components.upgrader.upgradeInbound(maConn, { signal: this.shutdown.signal })
      .catch(err => {
        this.log('inbound udx upgrade from %s:%d failed: %e', from.host, from.port, err)
        maConn.abort(err as Error)
      })
      .finally(() => { this.pendingInbound-- })
  }

  private connection (stream: UdxStream, direction: 'inbound' | 'outbound', remoteAddr: Multiaddr): UdxConnection {
    stream.setKeepalive(KEEPALIVE_MS)
    stream.once('close', () => { this.streamIds.delete(stream.id) })
    return new UdxConnection({ stream, direction, remoteAddr, log: this.components.logger.forComponent('punchgate:udx:connection') })
  }

  private newStreamId (): number {
    for (;;) {
      const id = randomBytes(4).readUInt32BE()
      if (id !== 0 && !this.streamIds.has(id)) {
        this.streamIds.add(id)
        return id
      }
    }
  }
}

async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  await delay(ms, undefined, { signal })
}

export function udxTransport (init: UdxTransportInit = {}): (components: UdxTransportComponents) => UdxTransport {
  return components => new UdxTransport(components, init)
}

/** The udx transport among libp2p's transports, if it runs. */
export function findUdx (transports: Transport[]): UdxTransport | undefined {
  return transports.find((t): t is UdxTransport => t instanceof UdxTransport)
}
