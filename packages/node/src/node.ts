/**
 * The runner: owns every piece of I/O. It turns libp2p happenings into phase-machine
 * events, executes the machine's commands, and logs each transition.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Connection, PrivateKey } from '@libp2p/interface'
import type { NodeConfig } from './config.ts'
import { DIAL_TIMEOUT_MS, MAX_TUNNEL_STREAMS, TUNNEL_PROTOCOL } from './constants.ts'
import { ListenError } from './errors.ts'
import { NodeEvents, type Path } from './events.ts'
import type { Logger } from './logger.ts'
import { findServiceProviders, publishService } from './discovery.ts'
import { createExposeHandler, pathOf } from './protocol/expose.ts'
import { TunnelListener, type TunnelRoute } from './protocol/listener.ts'
import { DEFAULT_TIMING, initialState, transition, type Timing } from './phase/machine.ts'
import type { Command, Event, State, TunnelStatus } from './phase/types.ts'
import { createSwarm, type Swarm } from './swarm.ts'

const LOOKUP_TIMEOUT_MS = 20_000
const PUBLISH_TIMEOUT_MS = 30_000

export interface StartOptions {
  privateKey: PrivateKey
  logger: Logger
  /** Overrides for tests that must not wait for production backoffs. */
  timing?: Partial<Timing>
}

export interface PunchgateNode {
  readonly peerId: string
  readonly events: NodeEvents
  readonly swarm: Swarm
  /** The node's current multiaddrs, each ending in /p2p/<id>. */
  addrs(): string[]
  /** The configured tunnels as they stand: bound address, state, peer, open connections. */
  tunnels(): TunnelInfo[]
  status(): NodeStatus
  /** Stops accepting, closes tunnels and the swarm. Idempotent. */
  stop(): Promise<void>
}

export interface TunnelInfo {
  tunnel: string
  service: string
  bind: string
  status: TunnelStatus
  peer?: string
  /** Path new connections take: set while the tunnel is live. */
  path?: Path
  /** TCP connections open right now. */
  connections: number
  opened: number
  rejected: number
  bytesIn: number
  bytesOut: number
}

export interface ConnectedPeer {
  peer: string
  path: Path
  addrs: string[]
  rttMs?: number
}

/** A snapshot for `punchgate status`: plain data, JSON-serialisable. */
export interface NodeStatus {
  peerId: string
  role: 'public' | 'private'
  phase: string
  listenAddrs: string[]
  announcedAddrs: string[]
  relay: { state: 'none' | 'reserving' | 'reserved', addrs: string[] }
  peers: ConnectedPeer[]
  services: Array<{ name: string, target: string }>
  tunnels: TunnelInfo[]
}

export async function startNode (config: NodeConfig, options: StartOptions): Promise<PunchgateNode> {
  const runner = new Runner(config, options, await createSwarm(config, options.privateKey))
  await runner.start()
  return runner
}

class Runner implements PunchgateNode {
  readonly events: NodeEvents
  readonly swarm: Swarm
  private readonly config: NodeConfig
  private readonly timing: Timing
  private state: State
  private readonly listeners = new Map<string, TunnelListener>()
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>()
  private readonly delays = new Map<string, number>()
  private readonly peerPaths = new Map<string, Path>()
  /** Bootstrap peer id -> the address it was configured with. */
  private readonly bootstrapPeers = new Map<string, string>()
  private readonly shutdown = new AbortController()
  private stopping?: Promise<void>

  constructor (config: NodeConfig, options: StartOptions, swarm: Swarm) {
    this.config = config
    this.swarm = swarm
    this.events = new NodeEvents(options.logger)
    this.timing = { ...DEFAULT_TIMING, ...options.timing }
    this.state = initialState({
      bootstraps: config.bootstrap,
      services: config.expose.map(e => e.name),
      tunnels: config.tunnels
    })
    for (const addr of config.bootstrap) {
      const id = multiaddr(addr).getComponents().findLast(c => c.name === 'p2p')?.value
      if (id != null) this.bootstrapPeers.set(id, addr)
    }
  }

  get peerId (): string {
    return this.swarm.peerId.toString()
  }

  addrs (): string[] {
    return this.swarm.getMultiaddrs().map(ma => ma.toString())
  }

  tunnels (): TunnelInfo[] {
    return [...this.listeners.entries()].map(([id, listener]) => {
      const t = this.state.tunnels[id]
      const path = t?.status === 'direct' ? 'direct' : t?.status === 'relayed' ? 'relay' : undefined
      return {
        tunnel: id,
        service: t?.service ?? '',
        bind: listener.bind,
        status: t?.status ?? 'failed',
        ...(t?.peer != null ? { peer: t.peer } : {}),
        ...(path != null ? { path } : {}),
        connections: listener.connections,
        ...listener.totals
      }
    })
  }

  status (): NodeStatus {
    const peers = new Map<string, ConnectedPeer>()
    for (const c of this.swarm.getConnections()) {
      if (c.status !== 'open') continue
      const peer = c.remotePeer.toString()
      const entry = peers.get(peer) ?? { peer, path: 'relay', addrs: [] }
      entry.addrs.push(c.remoteAddr.toString())
      if (pathOf(c) === 'direct') entry.path = 'direct'
      if (c.rtt != null) entry.rttMs = Math.min(entry.rttMs ?? Infinity, c.rtt)
      peers.set(peer, entry)
    }
    return {
      peerId: this.peerId,
      role: this.state.role,
      phase: this.state.phase,
      listenAddrs: this.swarm.services.internals.transportManager.getAddrs().map(a => a.toString()),
      announcedAddrs: this.addrs(),
      relay: { state: this.state.relay, addrs: this.relayAddrs() },
      peers: [...peers.values()],
      services: this.config.expose.map(e => ({ name: e.name, target: `${e.target.host}:${e.target.port}` })),
      tunnels: this.tunnels()
    }
  }

  async start (): Promise<void> {
    for (const spec of this.config.tunnels) {
      const listener = new TunnelListener({
        spec,
        events: this.events,
        onRouteFailed: err => this.dispatch({ type: 'stream-failed', tunnel: spec.id, error: err.message })
      })
      this.listeners.set(spec.id, listener)
    }
    try {
      for (const listener of this.listeners.values()) await listener.listen()
    } catch (err) {
      await Promise.all([...this.listeners.values()].map(async l => l.close()))
      throw err
    }

    await this.swarm.handle(TUNNEL_PROTOCOL, createExposeHandler({ services: this.config.expose, events: this.events }), {
      maxInboundStreams: MAX_TUNNEL_STREAMS,
      // libp2p takes the outbound cap from the handler registration, not from newStream().
      maxOutboundStreams: MAX_TUNNEL_STREAMS,
      runOnLimitedConnection: true
    })
    this.swarm.addEventListener('connection:open', evt => this.onConnection(evt.detail, true))
    this.swarm.addEventListener('connection:close', evt => this.onConnection(evt.detail, false))
    this.swarm.addEventListener('self:peer:update', () => this.checkRelay())
    if (this.config.mdns) {
      // @libp2p/mdns only reports peers; joining them is up to us.
      this.swarm.addEventListener('peer:discovery', evt => {
        if (!this.running || this.swarm.getConnections(evt.detail.id).length > 0) return
        this.swarm.dial(evt.detail.id, { signal: this.signal(DIAL_TIMEOUT_MS) }).catch(() => {})
      })
    }

    try {
      await this.swarm.start()
    } catch (err) {
      await Promise.all([...this.listeners.values()].map(async l => l.close()))
      throw new ListenError(this.config.listen, (err as Error).message)
    }

    this.events.emitEvent('node.started', {
      peerId: this.peerId,
      addrs: this.addrs(),
      role: this.state.role
    })
    this.dispatch({ type: 'start' })
  }

  async stop (): Promise<void> {
    this.stopping ??= (async () => {
      this.dispatch({ type: 'shutdown' })
      this.shutdown.abort()
      for (const timer of this.timers.values()) clearTimeout(timer)
      this.timers.clear()
      await Promise.all([...this.listeners.values()].map(async l => l.close()))
      await this.swarm.stop()
      this.events.emitEvent('node.stopped', { peerId: this.peerId })
    })()
    return this.stopping
  }

  private dispatch (event: Event): void {
    const before = this.state
    const [after, commands] = transition(before, event, this.timing)
    this.state = after
    if (before.phase !== after.phase) {
      this.events.emitEvent('phase.changed', { from: before.phase, to: after.phase, reason: event.type })
    }
    for (const [id, t] of Object.entries(after.tunnels)) {
      const was = before.tunnels[id]
      if (was?.status !== t.status) {
        this.events.emitEvent('tunnel.state', {
          tunnel: id, service: t.service, from: was?.status ?? 'none', to: t.status, ...(t.peer != null ? { peer: t.peer } : {})
        })
      }
    }
    for (const command of commands) this.execute(command)
  }

  private execute (command: Command): void {
    switch (command.type) {
      case 'dial-bootstrap': void this.dialBootstrap(command.addr); break
      case 'reserve-relay': void this.reserveRelay(); break
      case 'publish': void this.publish(); break
      case 'resolve': void this.resolve(command.tunnel, command.service, command.attempt); break
      case 'connect': void this.connect(command.tunnel, command.peer); break
      case 'activate': this.activate(command.tunnel, command.peer, command.path); break
      case 'deactivate': this.deactivate(command.tunnel, command.reason); break
      case 'schedule': this.schedule(command.key, command.ms, command.jitter, command.event); break
      case 'cancel': this.cancel(command.key); break
      case 'stop': break
      default: {
        const unreachable: never = command
        throw new Error(`unknown command ${JSON.stringify(unreachable)}`)
      }
    }
  }

  private signal (ms: number): AbortSignal {
    return AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(ms)])
  }

  private get running (): boolean {
    return !this.shutdown.signal.aborted
  }

  private schedule (key: string, ms: number, jitter: boolean, event: Event): void {
    this.cancel(key)
    // Full jitter on the upper half keeps many nodes from retrying in lockstep.
    const delay = jitter ? ms / 2 + Math.random() * ms / 2 : ms
    this.delays.set(key, delay)
    this.timers.set(key, setTimeout(() => {
      this.timers.delete(key)
      if (this.running) this.dispatch(event)
    }, delay))
  }

  private cancel (key: string): void {
    const timer = this.timers.get(key)
    if (timer != null) clearTimeout(timer)
    this.timers.delete(key)
  }

  private async dialBootstrap (addr: string): Promise<void> {
    try {
      await this.swarm.dial(multiaddr(addr), { signal: this.signal(DIAL_TIMEOUT_MS) })
      if (this.running) this.dispatch({ type: 'bootstrap-connected', addr })
    } catch (err) {
      if (!this.running) return
      const b = this.state.bootstraps[addr]
      const failures = (b?.failures ?? 0) + 1
      this.dispatch({ type: 'bootstrap-dial-failed', addr, error: (err as Error).message })
      this.events.emitEvent('bootstrap.dial-failed', {
        addr, attempt: failures, retryInMs: this.timerDelay(`bootstrap:${addr}`), error: (err as Error).message
      })
    }
  }

  /** The delay (jitter included) of the timer last scheduled under `key`. */
  private timerDelay (key: string): number {
    return Math.round(this.delays.get(key) ?? 0)
  }

  private connectedBootstraps (): string[] {
    return Object.entries(this.state.bootstraps).filter(([, b]) => b.connected).map(([addr]) => addr)
  }

  private relayAddrs (): string[] {
    return this.addrs().filter(a => a.includes('/p2p-circuit'))
  }

  private async reserveRelay (): Promise<void> {
    const relay = this.connectedBootstraps()[0]
    if (relay == null) {
      this.dispatch({ type: 'relay-failed', error: 'no bootstrap connected' })
      return
    }
    try {
      await this.swarm.services.internals.transportManager.listen([multiaddr(`${relay}/p2p-circuit`)])
      if (!this.running) return
      this.dispatch({ type: 'relay-reserved' })
      this.events.emitEvent('relay.reserved', { relay, addrs: this.relayAddrs() })
    } catch (err) {
      if (this.running) this.dispatch({ type: 'relay-failed', error: (err as Error).message })
    }
  }

  private checkRelay (): void {
    if (this.running && this.state.relay === 'reserved' && this.relayAddrs().length === 0) {
      const relay = this.connectedBootstraps()[0] ?? Object.keys(this.state.bootstraps)[0] ?? ''
      this.events.emitEvent('relay.lost', { relay })
      this.dispatch({ type: 'relay-lost' })
    }
  }

  private async publish (): Promise<void> {
    await Promise.all(this.config.expose.map(async ({ name }) => {
      try {
        await publishService(this.swarm, name, this.signal(PUBLISH_TIMEOUT_MS))
        this.events.emitEvent('service.published', { name })
      } catch (err) {
        if (this.running) this.events.emitEvent('service.publish-failed', { name, error: (err as Error).message })
      }
    }))
  }

  private async resolve (tunnel: string, service: string, attempt: number): Promise<void> {
    try {
      const providers = await findServiceProviders(this.swarm, service, this.signal(LOOKUP_TIMEOUT_MS))
      if (!this.running) return
      this.events.emitEvent('service.resolved', { name: service, providers })
      this.dispatch({ type: 'resolved', tunnel, providers })
    } catch (err) {
      if (!this.running) return
      this.dispatch({ type: 'resolve-failed', tunnel, error: (err as Error).message })
      this.events.emitEvent('service.resolve-failed', {
        name: service, attempt, retryInMs: this.timerDelay(`retry:${tunnel}`), error: (err as Error).message
      })
    }
  }

  private async connect (tunnel: string, peer: string): Promise<void> {
    const errors: string[] = []
    const peerId = peerIdFromString(peer)
    let connection: Connection | undefined
    try {
      connection = await this.swarm.dial(peerId, { signal: this.signal(DIAL_TIMEOUT_MS) })
    } catch (err) {
      errors.push((err as Error).message)
    }
    // A peer behind NAT may be reachable only through the relay slot it holds on our bootstrap.
    for (const relay of connection == null ? this.connectedBootstraps() : []) {
      if (!this.running) return
      try {
        connection = await this.swarm.dial(multiaddr(`${relay}/p2p-circuit/p2p/${peer}`), { signal: this.signal(DIAL_TIMEOUT_MS) })
        break
      } catch (err) {
        errors.push((err as Error).message)
      }
    }
    if (!this.running) return
    if (connection == null) {
      const t = this.state.tunnels[tunnel]
      this.events.emitEvent('tunnel.connect-failed', {
        tunnel, peer, service: t?.service ?? '', attempt: (t?.failures ?? 0) + 1, error: errors.join('; ')
      })
      this.dispatch({ type: 'connect-failed', tunnel, peer, error: errors.join('; ') })
      return
    }
    this.dispatch({ type: 'connected', tunnel, peer, path: this.bestPath(peer) === 'direct' ? 'direct' : 'relay' })
  }

  private bestPath (peer: string): Path | 'none' {
    const open = this.swarm.getConnections(peerIdFromString(peer)).filter(c => c.status === 'open')
    if (open.some(c => pathOf(c) === 'direct')) return 'direct'
    return open.length > 0 ? 'relay' : 'none'
  }

  private activate (tunnel: string, peer: string, path: Path): void {
    const listener = this.listeners.get(tunnel)
    if (listener == null) return
    listener.activate(this.routeTo(peer))
    this.events.emitEvent('tunnel.activated', { tunnel, peer, service: this.state.tunnels[tunnel]?.service ?? '', path })
  }

  private deactivate (tunnel: string, reason: string): void {
    const listener = this.listeners.get(tunnel)
    const t = this.state.tunnels[tunnel]
    listener?.deactivate()
    this.events.emitEvent('tunnel.deactivated', { tunnel, peer: t?.peer ?? '', service: t?.service ?? '', reason })
  }

  /** New streams always take the best connection at the time they open: direct once one exists. */
  private routeTo (peer: string): TunnelRoute {
    const peerId = peerIdFromString(peer)
    return {
      peer,
      openStream: async (signal) => {
        const connections = this.swarm.getConnections(peerId)
          .filter(c => c.status === 'open')
          .sort((a, b) => Number(pathOf(b) === 'direct') - Number(pathOf(a) === 'direct'))
        const connection = connections[0]
        if (connection == null) throw new Error(`no connection to ${peer}`)
        const stream = await connection.newStream(TUNNEL_PROTOCOL, {
          signal, runOnLimitedConnection: true, maxOutboundStreams: MAX_TUNNEL_STREAMS
        })
        return { stream, path: pathOf(connection) }
      }
    }
  }

  private onConnection (connection: Connection, opened: boolean): void {
    const peer = connection.remotePeer.toString()
    const fields = { peer, direct: pathOf(connection) === 'direct', addr: connection.remoteAddr.toString() }
    this.events.emitEvent(opened ? 'peer.connected' : 'peer.disconnected', fields)
    if (!this.running) return

    const bootstrap = this.bootstrapPeers.get(peer)
    const path = this.bestPath(peer)
    if (bootstrap != null && path === 'none' && this.state.bootstraps[bootstrap]?.connected === true) {
      this.dispatch({ type: 'bootstrap-disconnected', addr: bootstrap })
    }
    const previous = this.peerPaths.get(peer) ?? 'none'
    if (path === previous) return
    if (path === 'none') this.peerPaths.delete(peer)
    else this.peerPaths.set(peer, path)
    this.dispatch({ type: 'peer-path', peer, path })
  }
}
