/**
 * Client side of a UDP tunnel (`--tunnel... BIND/udp`): a local UDP socket whose every
 * distinct sender (address:port) gets a session of its own, one `/punchgate/udp/1.0.0`
 * stream to the provider. Replies on that stream go back to that sender only. A session
 * with no datagram either way for the idle timeout is closed. Datagrams that cannot be
 * delivered (no live tunnel, refused by the provider, congested stream) are dropped and
 * counted, as a router would.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'
import { isIPv6 } from 'node:net'
import type { Stream } from '@libp2p/interface'
import type { TunnelSpec } from '../config.ts'
import { HANDSHAKE_TIMEOUT_MS, MAX_UDP_SESSIONS, UDP_PROTOCOL, UDP_QUEUE_DATAGRAMS, UDP_REJECT_HOLD_MS } from '../constants.ts'
import { BindError } from '../errors.ts'
import type { NodeEvents, Path, UdpCloser } from '../events.ts'
import { DatagramChannel } from './datagram.ts'
import { decodeReply, readFrame, writeFrame } from './handshake.ts'
import { requestOf, type ListenerTotals, type TunnelRoute } from './listener.ts'

export interface UdpTunnelListenerInit {
  spec: TunnelSpec
  events: NodeEvents
  onRouteFailed: (err: Error) => void
  idleMs: number
  /** Sessions kept at once; the least recently active one is closed to make room. */
  maxSessions?: number
}

interface Session {
  sender: RemoteInfo
  state: 'connecting' | 'open' | 'rejected'
  /** Datagrams that arrived while the handshake was in flight, sent once it is accepted. */
  queue: Uint8Array[]
  channel?: DatagramChannel
  timer?: ReturnType<typeof setTimeout>
  lastActive: number
  /** Set when this daemon ends the session, for tunnel.closed. */
  closedBy?: UdpCloser
}

export class UdpTunnelListener {
  readonly totals: Required<ListenerTotals> = { opened: 0, rejected: 0, bytesIn: 0, bytesOut: 0, datagramsIn: 0, datagramsOut: 0, dropped: 0 }
  private readonly spec: TunnelSpec
  private readonly events: NodeEvents
  private readonly onRouteFailed: (err: Error) => void
  private readonly idleMs: number
  private readonly maxSessions: number
  private readonly socket: Socket
  private readonly sessions = new Map<string, Session>()
  private route?: TunnelRoute
  private closing = false
  private bound = false

  constructor (init: UdpTunnelListenerInit) {
    this.spec = init.spec
    this.events = init.events
    this.onRouteFailed = init.onRouteFailed
    this.idleMs = init.idleMs
    this.maxSessions = init.maxSessions ?? MAX_UDP_SESSIONS
    this.socket = createSocket(isIPv6(this.spec.bind.host) ? 'udp6' : 'udp4')
    this.socket.on('message', (msg, sender) => this.receive(msg, sender))
  }

  get bind (): string {
    const { host } = this.spec.bind
    const port = this.bound ? this.socket.address().port : this.spec.bind.port
    return `${host.includes(':') ? `[${host}]` : host}:${port}/udp`
  }

  /** Sessions open right now (senders with a live stream). */
  get connections (): number {
    return [...this.sessions.values()].filter(s => s.state === 'open').length
  }

  async listen (): Promise<void> {
    const flag = this.spec.peer != null ? 'tunnel' : 'tunnel-by-name'
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(new BindError(flag, this.spec.id, this.bind, err.code === 'EADDRINUSE' ? 'address already in use' : (err.code ?? err.message)))
      }
      this.socket.once('error', onError)
      this.socket.bind({ address: this.spec.bind.host, port: this.spec.bind.port, exclusive: true }, () => {
        this.socket.off('error', onError)
        this.bound = true
        resolve()
      })
    })
    // Sending to a sender that went away can fail (ICMP unreachable); the listener carries on.
    this.socket.on('error', () => {})
    this.events.emitEvent('tunnel.listening', { tunnel: this.spec.id, service: this.spec.service, bind: this.bind })
  }

  activate (route: TunnelRoute): void {
    this.route = route
  }

  deactivate (): void {
    this.route = undefined
  }

  /** UDP has no connections to let finish: sessions end with close(). */
  stopAccepting (): void {
    this.route = undefined
  }

  async idle (): Promise<void> {}

  async close (): Promise<void> {
    this.closing = true
    this.route = undefined
    for (const [key, session] of this.sessions) this.end(key, session, 'shutdown')
    await new Promise<void>(resolve => this.socket.close(() => resolve()))
  }

  private receive (msg: Buffer, sender: RemoteInfo): void {
    const key = `${sender.address}:${sender.port}`
    let session = this.sessions.get(key)
    if (session == null) {
      const route = this.route
      if (route == null || this.closing) {
        this.totals.dropped++
        return
      }
      session = { sender, state: 'connecting', queue: [], lastActive: performance.now() }
      this.evictIfFull()
      this.sessions.set(key, session)
      void this.connect(key, session, route)
    }
    switch (session.state) {
      case 'connecting':
        if (session.queue.length < UDP_QUEUE_DATAGRAMS) session.queue.push(msg)
        else this.totals.dropped++
        break
      case 'open':
        this.touch(key, session)
        if (session.channel?.send(msg) !== true) this.totals.dropped++
        break
      case 'rejected':
        this.totals.dropped++
        break
    }
  }

  private async connect (key: string, session: Session, route: TunnelRoute): Promise<void> {
    const { service, id: tunnel } = this.spec
    const handshake = AbortSignal.timeout(HANDSHAKE_TIMEOUT_MS)
    let opened: { stream: Stream, path: Path }
    try {
      opened = await route.openStream(handshake, UDP_PROTOCOL)
    } catch (err) {
      this.forget(key, session)
      this.onRouteFailed(err as Error)
      return
    }
    const { stream, path } = opened
    try {
      await writeFrame(stream, requestOf(this.spec), handshake)
      const reply = decodeReply(await readFrame(stream, handshake))
      if (!reply.accepted) {
        this.totals.rejected++
        this.events.emitEvent('tunnel.rejected', {
          side: 'client', tunnel, peer: route.peer, service, reason: reply.reason, transport: 'udp', ...(reply.message != null ? { message: reply.message } : {})
        })
        // Refused senders are dropped for a while rather than sending a new request per datagram.
        this.totals.dropped += session.queue.length
        session.queue = []
        session.state = 'rejected'
        clearTimeout(session.timer)
        session.timer = setTimeout(() => this.forget(key, session), UDP_REJECT_HOLD_MS)
        await stream.close().catch(() => stream.abort(new Error('rejected')))
        return
      }
    } catch (err) {
      if (stream.status === 'open') stream.abort(err as Error)
      this.forget(key, session)
      return
    }
    if (this.sessions.get(key) !== session) {
      // Evicted or shut down during the handshake.
      stream.abort(new Error('session closed during handshake'))
      return
    }

    const started = Date.now()
    const sender = `${session.sender.address}:${session.sender.port}`
    const channel = new DatagramChannel(stream, {
      onDatagram: datagram => {
        this.touch(key, session)
        this.socket.send(datagram, session.sender.port, session.sender.address)
      },
      onClose: error => {
        this.forget(key, session)
        const { datagramsIn, datagramsOut, bytesIn, bytesOut, dropped } = channel.counts
        this.totals.datagramsIn += datagramsIn
        this.totals.datagramsOut += datagramsOut
        this.totals.bytesIn += bytesIn
        this.totals.bytesOut += bytesOut
        this.events.emitEvent('tunnel.closed', {
          side: 'client', tunnel, peer: route.peer, service, transport: 'udp', sender, bytesIn, bytesOut,
          datagramsIn, datagramsOut, dropped, ms: Date.now() - started, ...(error != null ? { error: error.message } : {}),
          ...(session.closedBy != null ? { closedBy: session.closedBy } : {})
        })
      }
    })
    session.channel = channel
    session.state = 'open'
    this.totals.opened++
    this.events.emitEvent('tunnel.opened', { side: 'client', tunnel, peer: route.peer, service, path, transport: 'udp', sender })
    const queued = session.queue
    session.queue = []
    for (const datagram of queued) {
      if (!channel.send(datagram)) this.totals.dropped++
    }
    this.touch(key, session)
  }

  /** Traffic either way keeps a session alive; one timer per session, re-armed only when it fires. */
  private touch (key: string, session: Session): void {
    // The monotonic clock, as setTimeout's: a wall clock stepped forward (NTP, a VM or a
    // laptop waking up) must not make a busy session look idle.
    session.lastActive = performance.now()
    if (session.timer != null) return
    const check = (): void => {
      const idle = performance.now() - session.lastActive
      if (idle >= this.idleMs) this.end(key, session, 'idle')
      else session.timer = setTimeout(check, this.idleMs - idle)
    }
    session.timer = setTimeout(check, this.idleMs)
  }

  /** Closes a session: a new datagram from its sender starts a new one. */
  private end (key: string, session: Session, closedBy: UdpCloser): void {
    session.closedBy = closedBy
    this.forget(key, session)
    session.channel?.close()
  }

  private forget (key: string, session: Session): void {
    clearTimeout(session.timer)
    if (this.sessions.get(key) === session) this.sessions.delete(key)
  }

  private evictIfFull (): void {
    if (this.sessions.size < this.maxSessions) return
    let oldest: [string, Session] | undefined
    for (const entry of this.sessions) {
      if (oldest == null || entry[1].lastActive < oldest[1].lastActive) oldest = entry
    }
    if (oldest != null) this.end(oldest[0], oldest[1], 'evicted')
  }
}
