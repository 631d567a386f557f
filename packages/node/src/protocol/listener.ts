/**
 * Client side of a tunnel: a local TCP listener whose every accepted connection
 * becomes one libp2p stream to the provider. Connections that arrive before the
 * tunnel is live wait (bounded) instead of being refused, so `ssh -p 2222` started
 * together with the daemon just works. One failed connection never stops the listener.
 */
import { createServer, type Server, type Socket } from 'node:net'
import type { Stream } from '@libp2p/interface'
import type { TunnelSpec } from '../config.ts'
import { HANDSHAKE_TIMEOUT_MS, PENDING_CONNECTION_TIMEOUT_MS } from '../constants.ts'
import { BindError, TunnelRejectedError } from '../errors.ts'
import type { NodeEvents, Path } from '../events.ts'
import type { TunnelRequest } from './handshake.ts'
import { InFlight } from '../in-flight.ts'
import { cutSocket, pipeSocketStream } from './pipe.ts'
import { readReply, sendRequest } from './request.ts'

/** Totals over a listener's life, for status. UDP listeners also count datagrams. */
export interface ListenerTotals {
  opened: number
  rejected: number
  bytesIn: number
  bytesOut: number
  datagramsIn?: number
  datagramsOut?: number
  /** Datagrams that could not be delivered: no live tunnel, refused, or a congested stream. */
  dropped?: number
}

/** Where a live tunnel sends its connections. */
export interface TunnelRoute {
  peer: string
  /** Opens a stream of `protocol` (default: the TCP tunnel protocol) on the best connection to the peer right now. */
  openStream: (signal: AbortSignal, protocol?: string) => Promise<{ stream: Stream, path: Path }>
}

export interface TunnelListenerInit {
  spec: TunnelSpec
  events: NodeEvents
  /** Told when a stream could not be opened on the live route: the peer may be gone. */
  onRouteFailed: (err: Error) => void
  pendingTimeoutMs?: number
}

/** The handshake request a tunnel sends: its service, and its destination if it has one. */
export function requestOf (spec: TunnelSpec): TunnelRequest {
  return { service: spec.service, ...(spec.destination != null ? { destination: spec.destination } : {}) }
}

export class TunnelListener {
  private readonly spec: TunnelSpec
  private readonly events: NodeEvents
  private readonly onRouteFailed: (err: Error) => void
  private readonly pendingTimeoutMs: number
  private readonly server: Server
  private readonly sockets = new Set<Socket>()
  private readonly open = new InFlight()
  private pending: Array<() => void> = []
  private route?: TunnelRoute
  /** Totals over the listener's life, for status and metrics. */
  readonly totals = { opened: 0, rejected: 0, bytesIn: 0, bytesOut: 0 }

  constructor (init: TunnelListenerInit) {
    this.spec = init.spec
    this.events = init.events
    this.onRouteFailed = init.onRouteFailed
    this.pendingTimeoutMs = init.pendingTimeoutMs ?? PENDING_CONNECTION_TIMEOUT_MS
    this.server = createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, socket => {
      this.accept(socket)
    })
  }

  /** The bound address (the OS's choice when the spec asked for port 0). */
  get bind (): string {
    const address = this.server.address()
    const { host } = this.spec.bind
    const port = address != null && typeof address === 'object' ? address.port : this.spec.bind.port
    return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
  }

  /** Open connections right now, for status and tests. */
  get connections (): number {
    return this.sockets.size
  }

  async listen (): Promise<void> {
    const flag = this.spec.peer != null ? 'tunnel' : 'tunnel-by-name'
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(new BindError(flag, this.spec.id, this.bind, err.code === 'EADDRINUSE' ? 'address already in use' : (err.code ?? err.message)))
      }
      this.server.once('error', onError)
      this.server.listen({ host: this.spec.bind.host, port: this.spec.bind.port }, () => {
        this.server.off('error', onError)
        resolve()
      })
    })
    this.server.on('error', () => {})
    this.events.emitEvent('tunnel.listening', { tunnel: this.spec.id, service: this.spec.service, bind: this.bind })
  }

  activate (route: TunnelRoute): void {
    this.route = route
    const waiting = this.pending
    this.pending = []
    waiting.forEach(go => go())
  }

  deactivate (): void {
    this.route = undefined
  }

  /**
   * Graceful stop, first half: no new connections (the port is released and connections
   * still waiting for a live tunnel are closed); open ones carry on. Then `idle()`.
   */
  stopAccepting (): void {
    if (this.server.listening) this.server.close()
    const waiting = this.pending
    this.pending = []
    this.route = undefined
    waiting.forEach(go => go())
  }

  /** Resolves once every accepted connection has closed. */
  async idle (): Promise<void> {
    await this.open.idle()
  }

  async close (): Promise<void> {
    this.route = undefined
    // Cut, not finished: the apps must not take what they got for a complete transfer.
    for (const socket of this.sockets) cutSocket(socket)
    if (!this.server.listening) return
    await new Promise<void>(resolve => this.server.close(() => resolve()))
  }

  private accept (socket: Socket): void {
    this.sockets.add(socket)
    const closed = this.open.add()
    socket.on('close', () => {
      this.sockets.delete(socket)
      closed()
    })
    // An early reset by the local client must not crash anything before the pipe owns the socket.
    socket.on('error', () => socket.destroy())
    if (this.route != null) {
      void this.forward(socket, this.route)
      return
    }
    const timer = setTimeout(() => {
      this.pending = this.pending.filter(go => go !== start)
      socket.destroy()
    }, this.pendingTimeoutMs)
    const start = (): void => {
      clearTimeout(timer)
      if (socket.destroyed) return
      if (this.route == null) socket.destroy()
      else void this.forward(socket, this.route)
    }
    this.pending.push(start)
  }

  private async forward (socket: Socket, route: TunnelRoute): Promise<void> {
    const { service, id: tunnel } = this.spec
    const handshake = AbortSignal.timeout(HANDSHAKE_TIMEOUT_MS)
    let stream: Stream
    let path: Path
    try {
      ({ stream, path } = await route.openStream(handshake))
    } catch (err) {
      socket.destroy()
      // The per-connection stream cap is this TCP connection's problem, not the route's.
      if ((err as Error).name === 'TooManyOutboundProtocolStreamsError') {
        this.totals.rejected++
        this.events.emitEvent('tunnel.rejected', { side: 'client', tunnel, peer: route.peer, service, reason: 'too-many-connections' })
        return
      }
      this.onRouteFailed(err as Error)
      return
    }

    if (socket.destroyed) {
      stream.abort(new Error('local connection closed before the stream opened'))
      return
    }
    // The request and the client's first bytes go out together, without waiting for the
    // answer: the server reads those bytes only once it has accepted (docs/protocol.md).
    // What comes back is read from the answer on.
    socket.removeAllListeners('error')
    sendRequest(stream, requestOf(this.spec))
    const replied = readReply(stream, service, handshake)
    const result = pipeSocketStream(socket, stream, { replied })
    socket.resume()
    try {
      await replied
    } catch (err) {
      if (err instanceof TunnelRejectedError) {
        this.totals.rejected++
        this.events.emitEvent('tunnel.rejected', {
          side: 'client', tunnel, peer: route.peer, service, reason: err.reason, ...(err.detail != null ? { message: err.detail } : {})
        })
      }
      await result
      return
    }
    const started = Date.now()
    this.totals.opened++
    this.events.emitEvent('tunnel.opened', { side: 'client', tunnel, peer: route.peer, service, path })
    const { bytesIn, bytesOut, error } = await result
    this.totals.bytesIn += bytesIn
    this.totals.bytesOut += bytesOut
    this.events.emitEvent('tunnel.closed', {
      side: 'client', tunnel, peer: route.peer, service, bytesIn, bytesOut, ms: Date.now() - started,
      ...(error != null ? { error: error.message } : {})
    })
  }
}
