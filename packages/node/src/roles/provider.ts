/**
 * The provider role: serves the services this node exposes (the expose handlers for TCP
 * and UDP, with their access checks in protocol/services.ts), publishes them in the DHT,
 * and serves our own by-name tunnels in process. Counts what it serves, so a graceful stop
 * can wait for it.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { streamPair } from '@libp2p/utils'
import type { Connection, Stream } from '@libp2p/interface'
import type { NodeConfig } from '../config.ts'
import { DHT_PROTOCOL, MAX_TUNNEL_STREAMS, TUNNEL_PROTOCOL, UDP_PROTOCOL } from '../constants.ts'
import { publishService } from '../discovery.ts'
import type { NodeEvents } from '../events.ts'
import { InFlight } from '../in-flight.ts'
import { LogLimit } from '../log-limit.ts'
import { createExposeHandler } from '../protocol/expose.ts'
import type { TunnelRoute } from '../protocol/listener.ts'
import { ServiceTable } from '../protocol/services.ts'
import { createUdpExposeHandler } from '../protocol/udp-expose.ts'
import type { Loop } from '../runner.ts'
import type { Swarm } from '../swarm.ts'

const PUBLISH_TIMEOUT_MS = 30_000

/** What the expose handlers read of the connection a stream came on. */
type SelfConnection = Pick<Connection, 'remotePeer' | 'direct' | 'remoteAddr'>
type ExposeHandler = (stream: Stream, connection: SelfConnection) => Promise<void>

export interface ProviderInit {
  config: NodeConfig
  swarm: Swarm
  events: NodeEvents
  loop: Loop
  /** Server-side handshake timeout (tests shorten it). */
  handshakeTimeoutMs?: number
}

export class Provider {
  private readonly config: NodeConfig
  private readonly swarm: Swarm
  private readonly events: NodeEvents
  private readonly loop: Loop
  private readonly handshakeTimeoutMs?: number
  private readonly services: ServiceTable
  /** Tunnel connections this node serves to peers (the expose side), open right now. */
  readonly served = new InFlight()
  /** The TCP and UDP expose handlers by protocol: peers reach them through libp2p, our own by-name tunnels through selfRoute(). */
  private readonly handlers = new Map<string, ExposeHandler>()
  /** Server-side rejections logged per peer (TCP and UDP together); the rest are summed up. */
  private readonly rejections: LogLimit

  constructor (init: ProviderInit) {
    this.config = init.config
    this.swarm = init.swarm
    this.events = init.events
    this.loop = init.loop
    this.handshakeTimeoutMs = init.handshakeTimeoutMs
    this.services = new ServiceTable(init.config, init.swarm.peerId.toString())
    this.rejections = new LogLimit({
      onSuppressed: ({ key, count, reasons, windowMs }) => {
        this.events.emitEvent('tunnel.rejected-suppressed', { side: 'server', peer: key, count, reasons, windowMs })
      }
    })
  }

  /** Registers the expose handlers (before the swarm starts) and says which services anyone may use. */
  async start (): Promise<void> {
    const handlerOptions = {
      maxInboundStreams: MAX_TUNNEL_STREAMS,
      // libp2p takes the outbound cap from the handler registration, not from newStream().
      maxOutboundStreams: MAX_TUNNEL_STREAMS,
      runOnLimitedConnection: true
    }
    this.handlers.set(TUNNEL_PROTOCOL, this.counted(createExposeHandler({
      table: this.services, events: this.events, rejections: this.rejections, handshakeTimeoutMs: this.handshakeTimeoutMs
    })))
    this.handlers.set(UDP_PROTOCOL, this.counted(createUdpExposeHandler({
      table: this.services, events: this.events, rejections: this.rejections, idleMs: this.config.udpIdleMs
    })))
    for (const [protocol, handler] of this.handlers) await this.swarm.handle(protocol, handler, handlerOptions)
    // A peer that serves the DHT (on connecting, or once its identify push says it turned
    // public) should hold our provider records too: the machine publishes again soon.
    await this.swarm.register(DHT_PROTOCOL, {
      onConnect: () => { if (this.loop.running) this.loop.dispatch({ type: 'dht-server-connected' }) }
    })
  }

  /** After start: one event per service that anyone may use. */
  announceUnrestricted (): void {
    for (const name of this.services.unrestricted) this.events.emitEvent('service.unrestricted', { name })
  }

  /** Refuses new incoming tunnel streams (the first step of a graceful stop). */
  async stopServing (): Promise<void> {
    await this.swarm.unhandle([TUNNEL_PROTOCOL, UDP_PROTOCOL])
  }

  /** Once stopServing has run, no rejection can follow: sums up the suppressed ones. */
  close (): void {
    this.rejections.close()
  }

  /** Whether `peer` may use any of our services (it may then ask us to punch). */
  mayServe (peer: string): boolean {
    return this.services.mayUseAny(peer)
  }

  /** Whether this node exposes `service` itself over `transport` (undefined: TCP). */
  exposes (service: string, transport: 'udp' | undefined): boolean {
    return [...this.config.expose, ...this.config.exposeNet].some(e => e.name === service && e.transport === transport)
  }

  /** The publish command: every service into the DHT, each with its own outcome event. */
  async publish (): Promise<void> {
    await Promise.all(this.loop.state.services.map(async name => {
      try {
        await publishService(this.swarm, name, this.loop.signal(PUBLISH_TIMEOUT_MS))
        this.events.emitEvent('service.published', { name })
      } catch (err) {
        if (this.loop.running) this.events.emitEvent('service.publish-failed', { name, error: (err as Error).message })
      }
    }))
  }

  /**
   * A by-name tunnel to our own service: each stream is one end of an in-process pair whose
   * other end our expose handler serves as it would a peer's, admission and events included.
   */
  selfRoute (): TunnelRoute {
    const peer = this.swarm.peerId.toString()
    const self: SelfConnection = { remotePeer: this.swarm.peerId, direct: true, remoteAddr: multiaddr(`/p2p/${peer}`) }
    return {
      peer,
      openStream: async (signal, protocol = TUNNEL_PROTOCOL) => {
        signal.throwIfAborted()
        const handler = this.handlers.get(protocol)
        if (handler == null || !this.loop.running) throw new Error(`not serving ${protocol}`)
        const [outbound, inbound] = await streamPair({ delay: 0 })
        void handler(inbound, self)
        return { stream: outbound, path: 'direct' }
      }
    }
  }

  /** Wraps a stream handler so a graceful stop can wait for the connections it serves. */
  private counted (handler: ExposeHandler): ExposeHandler {
    return async (stream, connection) => {
      const done = this.served.add()
      try {
        await handler(stream, connection)
      } finally {
        done()
      }
    }
  }
}
