/**
 * The runner: owns every piece of I/O. It turns libp2p happenings into phase-machine
 * events, executes the machine's commands, and logs each transition.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { streamPair } from '@libp2p/utils'
import { bootstrapHint } from './bootstrap-hint.ts'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import type { Connection, PrivateKey, Stream } from '@libp2p/interface'
import type { NodeConfig, TunnelSpec } from './config.ts'
import { DIAL_TIMEOUT_MS, DRAIN_TIMEOUT_MS, HANDSHAKE_TIMEOUT_MS, MAX_PROVIDER_RECORDS_KEPT, MAX_PROVIDER_RECORDS_KEPT_PER_PEER, MAX_TUNNEL_STREAMS, PROVIDER_REFUSED_LOG_MS, TUNNEL_PROTOCOL, UDP_PROTOCOL } from './constants.ts'
import { ListenError, NoTrustedProviderError, ServiceNotFoundError, TunnelOpenError, TunnelRejectedError } from './errors.ts'
import { NodeEvents, waitForEvent, type Path } from './events.ts'
import type { Logger } from './logger.ts'
import { findServiceProviders, publishService } from './discovery.ts'
import { createExposeHandler, pathOf } from './protocol/expose.ts'
import type { TunnelRoute } from './protocol/listener.ts'
import { createLocalListener, type LocalListener } from './protocol/local-listener.ts'
import { describeServices, ServiceTable } from './protocol/services.ts'
import { createUdpExposeHandler } from './protocol/udp-expose.ts'
import { requestTunnel } from './protocol/request.ts'
import { drainConnections } from './drain.ts'
import { InFlight } from './in-flight.ts'
import { startRttReporter, type RttReporter } from './rtt.ts'
import { DEFAULT_TIMING, initialState, transition, type Timing } from './phase/machine.ts'
import type { Command, Event, State } from './phase/types.ts'
import type { ConnectedPeer, NodeStatus, TunnelInfo } from './status.ts'
import { relaysFor } from './relay.ts'
import { createSwarm, type Swarm } from './swarm.ts'
import { ObservedAddresses } from './holepunch/observed.ts'
import { HolePuncher } from './holepunch/puncher.ts'
import { noTrustedProviderReason, splitProviders, type TrustRule } from './trust.ts'
import { CappedProviderStore, refusalReporter, type ProviderCaps } from './provider-caps.ts'
import { localScope, type CandidateScope } from './holepunch/candidates.ts'
import { LogLimit } from './log-limit.ts'
import { ConsumerTrust } from './roles/consumer-trust.ts'
import { Splicing } from './roles/relay.ts'
import { isSpliced } from './splice/service.ts'

export type { ConnectedPeer, NodeStatus, TunnelInfo } from './status.ts'

const LOOKUP_TIMEOUT_MS = 20_000
const PUBLISH_TIMEOUT_MS = 30_000

export interface StartOptions {
  privateKey: PrivateKey
  logger: Logger
  /** Overrides for tests that must not wait for production backoffs. */
  timing?: Partial<Timing>
  /** Server-side handshake timeout (default HANDSHAKE_TIMEOUT_MS), so a hostile-peer test need not wait 10 s. */
  handshakeTimeoutMs?: number
  /** A public node's provider record caps (default MAX_PROVIDER_RECORDS_KEPT_PER_PEER, MAX_PROVIDER_RECORDS_KEPT), smaller in tests. */
  providerCaps?: ProviderCaps
  /**
   * Tests only, for meshes on 127.0.0.1: loopback addresses count as dialable punch candidates
   * and provider addresses (holepunch/candidates.ts). Never set by the daemon.
   */
  loopbackCandidates?: boolean
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
  /**
   * One tunnel connection outside any configured tunnel (`punchgate connect`): asks the given
   * peer, else the service's providers (live tunnels' peers and connected ones first), for
   * `service`, on the best connection (direct preferred). Resolves with an accepted stream.
   */
  openTunnelStream(options: OpenTunnelOptions): Promise<TunnelStream>
  /**
   * Stops accepting (tunnel ports and incoming tunnel streams), lets open tunnel connections
   * finish for up to `drainMs`, then cuts what remains and closes the swarm. Idempotent.
   */
  stop(options?: StopOptions): Promise<void>
}

export interface StopOptions {
  /** How long open tunnel connections may take to finish; 0 cuts them at once. */
  drainMs?: number
}

export interface OpenTunnelOptions {
  service: string
  peer?: string
  signal?: AbortSignal
}

export interface TunnelStream {
  /** Accepted by the server: raw bytes from here on. */
  stream: Stream
  peer: string
  path: Path
}

export async function startNode (config: NodeConfig, options: StartOptions): Promise<PunchgateNode> {
  // --metrics only: the endpoint's modules (an HTTP server, prom-client) are loaded when asked for.
  const metricsModule = config.metrics != null ? await import('./metrics.ts') : undefined
  const registry = metricsModule?.createRegistry()
  const providers = config.bootstrap.length === 0
    ? new CappedProviderStore({ self: peerIdFromPrivateKey(options.privateKey).toString(), ...(options.providerCaps ?? { perPeer: MAX_PROVIDER_RECORDS_KEPT_PER_PEER, total: MAX_PROVIDER_RECORDS_KEPT }) })
    : undefined
  const runner = new Runner(config, options, await createSwarm(config, options.privateKey, registry, providers))
  if (providers != null) providers.onRefused = refusalReporter(refusal => runner.events.emitEvent('provider.refused', refusal), PROVIDER_REFUSED_LOG_MS)
  if (config.metrics != null && metricsModule != null && registry != null) {
    const metrics = new metricsModule.MetricsServer({ registry, node: runner })
    // Bound before the node starts, like tunnel listeners: a port clash fails fast.
    runner.metricsUrl = await metrics.listen(config.metrics)
    runner.onStop(async () => metrics.close())
  }
  try {
    await runner.start()
  } catch (err) {
    await runner.runStopHooks()
    throw err
  }
  return runner
}

class Runner implements PunchgateNode {
  readonly events: NodeEvents
  readonly swarm: Swarm
  private readonly config: NodeConfig
  private readonly timing: Timing
  private readonly handshakeTimeoutMs?: number
  private state: State
  private readonly listeners = new Map<string, LocalListener>()
  private readonly services: ServiceTable
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>()
  private readonly delays = new Map<string, number>()
  private readonly peerPaths = new Map<string, Path>()
  /** Bootstrap peer id -> the address it was configured with. */
  private readonly bootstrapPeers = new Map<string, string>()
  private readonly shutdown = new AbortController()
  private readonly puncher: HolePuncher
  /** Peers an openTunnelStream() is asking or streaming to right now: punching with them is wanted. */
  private readonly meetings = new Map<string, number>()
  private readonly loopbackCandidates: boolean
  /** Splicing for peers (public) or through our bootstraps (private): roles/relay.ts. */
  private readonly splicing: Splicing
  /** Tunnel connections this node serves to peers (the expose side), open right now. */
  private readonly served = new InFlight()
  /** The TCP and UDP expose handlers by protocol: peers reach them through libp2p, our own by-name tunnels through selfRoute(). */
  private readonly exposeHandlers = new Map<string, ExposeHandler>()
  private stopping?: Promise<void>
  private readonly stopHooks: Array<() => Promise<void>> = []
  private startedAt = new Date(0)
  private rtt?: RttReporter
  /** Server-side rejections logged per peer (TCP and UDP together); the rest are summed up. */
  private readonly rejections: LogLimit
  metricsUrl?: string
  /** Provider trust of by-name tunnels and `connect` (roles/consumer-trust.ts). */
  private readonly trust: ConsumerTrust

  constructor (config: NodeConfig, options: StartOptions, swarm: Swarm) {
    this.config = config
    this.swarm = swarm
    this.events = new NodeEvents(options.logger)
    this.timing = { ...DEFAULT_TIMING, ...options.timing }
    this.handshakeTimeoutMs = options.handshakeTimeoutMs
    this.trust = new ConsumerTrust(this.events, config.trust, config.knownProviders)
    this.splicing = new Splicing({
      config,
      swarm,
      events: this.events,
      isBootstrap: peer => this.bootstrapPeers.has(peer),
      signal: ms => this.signal(ms),
      running: () => this.running,
      onStop: hook => this.onStop(hook)
    })
    this.services = new ServiceTable(config, swarm.peerId.toString())
    this.state = initialState({
      bootstraps: config.bootstrap,
      services: [...config.expose, ...config.exposeNet].map(e => e.name),
      tunnels: config.tunnels,
      relayOff: config.relayMode.mode === 'off'
    })
    this.loopbackCandidates = options.loopbackCandidates === true
    this.puncher = new HolePuncher({
      swarm,
      observed: new ObservedAddresses(swarm),
      events: this.events,
      mayPunchWith: peer => this.mayPunchWith(peer),
      scope: ownAddrs => this.dialScope(ownAddrs)
    })
    this.rejections = new LogLimit({
      onSuppressed: ({ key, count, reasons, windowMs }) => {
        this.events.emitEvent('tunnel.rejected-suppressed', { side: 'server', peer: key, count, reasons, windowMs })
      }
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
        ...listener.totals,
        ...this.trust.info(id)
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
      // Our own probes are fresher than libp2p's connection monitor (every 10 s).
      const probed = this.rtt?.latest.get(peer)
      if (probed != null) entry.rttMs = probed
      peers.set(peer, entry)
    }
    return {
      peerId: this.peerId,
      role: this.state.role,
      phase: this.state.phase,
      startedAt: this.startedAt.toISOString(),
      listenAddrs: this.swarm.services.internals.transportManager.getAddrs().map(a => a.toString()),
      announcedAddrs: this.addrs(),
      observedAddrs: this.swarm.services.internals.addressManager.getObservedAddrs().map(a => a.toString()),
      relay: { state: this.state.relay, addrs: this.relayAddrs() },
      ...this.splicing.status(),
      peers: [...peers.values()],
      services: describeServices(this.config),
      tunnels: this.tunnels(),
      ...(this.metricsUrl != null ? { metrics: this.metricsUrl } : {})
    }
  }

  async start (): Promise<void> {
    // A broken known-providers file stops the node before it binds anything.
    this.trust.refresh()
    for (const spec of this.config.tunnels) {
      const listener = createLocalListener({
        spec,
        events: this.events,
        udpIdleMs: this.config.udpIdleMs,
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

    const handlerOptions = {
      maxInboundStreams: MAX_TUNNEL_STREAMS,
      // libp2p takes the outbound cap from the handler registration, not from newStream().
      maxOutboundStreams: MAX_TUNNEL_STREAMS,
      runOnLimitedConnection: true
    }
    this.exposeHandlers.set(TUNNEL_PROTOCOL, this.counted(createExposeHandler({
      table: this.services, events: this.events, rejections: this.rejections, handshakeTimeoutMs: this.handshakeTimeoutMs
    })))
    this.exposeHandlers.set(UDP_PROTOCOL, this.counted(createUdpExposeHandler({
      table: this.services, events: this.events, rejections: this.rejections, idleMs: this.config.udpIdleMs
    })))
    for (const [protocol, handler] of this.exposeHandlers) await this.swarm.handle(protocol, handler, handlerOptions)
    // After drainConnections has unhandled both protocols: no rejection can follow the summaries.
    this.onStop(async () => this.rejections.close())
    await this.puncher.start()
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
      // Bound before the swarm starts, like tunnel listeners: a clash on an explicit port fails fast.
      await this.splicing.bind()
    } catch (err) {
      await Promise.all([...this.listeners.values()].map(async l => l.close()))
      throw err
    }
    try {
      await this.swarm.start()
    } catch (err) {
      await Promise.all([...this.listeners.values()].map(async l => l.close()))
      throw new ListenError(this.config.listen, (err as Error).message)
    }

    this.startedAt = new Date()
    await this.splicing.start()
    if (this.config.rttIntervalMs > 0) {
      const rtt = startRttReporter({ swarm: this.swarm, events: this.events, intervalMs: this.config.rttIntervalMs })
      this.rtt = rtt
      this.onStop(async () => rtt.stop())
    }
    for (const name of this.services.unrestricted) this.events.emitEvent('service.unrestricted', { name })
    this.events.emitEvent('node.started', {
      peerId: this.peerId,
      addrs: this.addrs(),
      role: this.state.role
    })
    if (this.state.role === 'public') this.events.emitEvent('node.bootstrap-hint', bootstrapHint(this.addrs()))
    this.dispatch({ type: 'start' })
  }

  async stop (options: StopOptions = {}): Promise<void> {
    this.stopping ??= (async () => {
      this.dispatch({ type: 'shutdown' })
      this.shutdown.abort()
      this.puncher.stop()
      for (const timer of this.timers.values()) clearTimeout(timer)
      this.timers.clear()
      await drainConnections({
        listeners: [...this.listeners.values()],
        served: this.served,
        stopServing: async () => { await this.swarm.unhandle([TUNNEL_PROTOCOL, UDP_PROTOCOL]) },
        events: this.events,
        timeoutMs: options.drainMs ?? DRAIN_TIMEOUT_MS
      })
      await Promise.all([...this.listeners.values()].map(async l => l.close()))
      await this.runStopHooks()
      await this.swarm.stop()
      this.events.emitEvent('node.stopped', { peerId: this.peerId })
    })()
    return this.stopping
  }

  /** A public node's splice listener (--relay-splice), when it has one. */
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

  /** Registers a cleanup for stop(): helpers started beside the runner (metrics, RTT probes). */
  onStop (hook: () => Promise<void>): void {
    this.stopHooks.push(hook)
  }

  async runStopHooks (): Promise<void> {
    const hooks = this.stopHooks.splice(0)
    await Promise.all(hooks.map(async hook => hook()))
  }

  async openTunnelStream (options: OpenTunnelOptions): Promise<TunnelStream> {
    const { service } = options
    const signal = AbortSignal.any([this.shutdown.signal, options.signal ?? AbortSignal.timeout(LOOKUP_TIMEOUT_MS + DIAL_TIMEOUT_MS)])
    if (this.state.phase === 'joining') {
      // A private node finds nothing in the DHT before it has joined through a bootstrap.
      await waitForEvent(this.events, 'phase.changed', e => e.to !== 'joining', signal)
    }
    const { peers, rule } = options.peer != null ? { peers: [options.peer], rule: undefined } : await this.candidatesFor(service, signal)
    if (peers.length === 0) throw new ServiceNotFoundError(service)
    const errors: string[] = []
    for (const peer of peers) {
      const done = this.meeting(peer)
      try {
        const opened = await this.openOn(peer, service, signal)
        opened.stream.addEventListener('close', done, { once: true })
        if (rule?.source === 'first-use' && !await this.trust.pinFirstUse(undefined, service, peer)) {
          // Another connect or tunnel pinned a different provider meanwhile: not one byte to this one.
          const err = new Error('another provider was pinned meanwhile')
          opened.stream.abort(err)
          throw err
        }
        return opened
      } catch (err) {
        done()
        const reason = err instanceof TunnelRejectedError ? `refused (${err.reason})` : (err as Error).message
        errors.push(peers.length > 1 ? `${peer}: ${reason}` : reason)
        if (signal.aborted) break
      }
    }
    throw new TunnelOpenError(service, errors)
  }

  /**
   * Peers of live tunnels to `service` first (their connections are up), then the DHT's
   * providers; only those `--trust` or the pin trusts (docs/access-control.md).
   */
  private async candidatesFor (service: string, signal: AbortSignal): Promise<{ peers: string[], rule: TrustRule }> {
    const rule = this.trust.ruleFor(service)
    const live = Object.values(this.state.tunnels)
      .filter(t => t.service === service && t.peer != null && (t.status === 'direct' || t.status === 'relayed' || t.status === 'punching'))
      .map(t => t.peer ?? '')
    let providers: string[] = []
    try {
      providers = await findServiceProviders(this.swarm, service, signal, rule.trusted, this.dialScope())
      this.events.emitEvent('service.resolved', { name: service, providers })
    } catch (err) {
      if (live.length === 0) throw err
    }
    const { trusted, untrusted } = splitProviders([...new Set([...live, ...providers])], rule)
    for (const peer of untrusted) this.trust.warnUntrusted(undefined, service, peer)
    if (trusted.length === 0 && untrusted.length > 0) {
      throw new NoTrustedProviderError(service, untrusted, noTrustedProviderReason(service, rule.source))
    }
    return { peers: trusted, rule }
  }

  /** What a peer may make us dial (holepunch/candidates.ts), as this host stands now. */
  private dialScope (ownAddrs: string[] = []): CandidateScope {
    return localScope({ ownAddrs, allowLoopback: this.loopbackCandidates })
  }

  /** Punch requests are answered for peers we opened a tunnel to and peers that may use a service of ours. */
  private mayPunchWith (peer: string): boolean {
    return this.services.mayUseAny(peer) || this.meetings.has(peer) ||
      Object.values(this.state.tunnels).some(t => t.peer === peer)
  }

  /** Marks `peer` as one we are opening a tunnel to, until the returned function is called (idempotent). */
  private meeting (peer: string): () => void {
    this.meetings.set(peer, (this.meetings.get(peer) ?? 0) + 1)
    let done = false
    return () => {
      if (done) return
      done = true
      const left = (this.meetings.get(peer) ?? 1) - 1
      if (left > 0) this.meetings.set(peer, left)
      else this.meetings.delete(peer)
    }
  }

  private async openOn (peer: string, service: string, signal: AbortSignal): Promise<TunnelStream> {
    if (this.bestPath(peer) === 'none') {
      const { connection, errors } = await this.dialPeer(peer, signal)
      if (connection == null) throw new Error(errors.join('; '))
    }
    const { stream, path } = await this.routeTo(peer).openStream(signal)
    try {
      await requestTunnel(stream, service, AbortSignal.any([signal, AbortSignal.timeout(HANDSHAKE_TIMEOUT_MS)]))
    } catch (err) {
      if (err instanceof TunnelRejectedError) {
        this.events.emitEvent('tunnel.rejected', { side: 'client', peer, service, reason: err.reason })
      }
      if (stream.status === 'open') stream.abort(err as Error)
      throw err
    }
    return { stream, peer, path }
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
      case 'punch': void this.punch(command.peer, command.attempt); break
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
    const relay = relaysFor(this.config.relayMode, this.connectedBootstraps())[0]
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
      if (!this.running) return
      this.dispatch({ type: 'relay-failed', error: (err as Error).message })
      this.events.emitEvent('relay.reserve-failed', { relay, retryInMs: this.timerDelay('relay'), error: (err as Error).message })
    }
  }

  private checkRelay (): void {
    if (this.running && this.state.relay === 'reserved' && this.relayAddrs().length === 0) {
      const relay = relaysFor(this.config.relayMode, this.connectedBootstraps())[0] ?? Object.keys(this.state.bootstraps)[0] ?? ''
      this.events.emitEvent('relay.lost', { relay })
      this.dispatch({ type: 'relay-lost' })
    }
  }

  private async publish (): Promise<void> {
    await Promise.all(this.state.services.map(async name => {
      try {
        await publishService(this.swarm, name, this.signal(PUBLISH_TIMEOUT_MS))
        this.events.emitEvent('service.published', { name })
      } catch (err) {
        if (this.running) this.events.emitEvent('service.publish-failed', { name, error: (err as Error).message })
      }
    }))
  }

  private async resolve (tunnel: string, service: string, attempt: number): Promise<void> {
    if (this.exposesItself(tunnel)) {
      // The DHT never lists ourselves: our own service is served here, through our own expose handler.
      this.events.emitEvent('service.resolved', { name: service, providers: [this.peerId] })
      this.dispatch({ type: 'resolved', tunnel, providers: [this.peerId] })
      return
    }
    try {
      const rule = this.trust.ruleFor(service, this.tunnelSpec(tunnel)?.trust)
      const providers = await findServiceProviders(this.swarm, service, this.signal(LOOKUP_TIMEOUT_MS), rule.trusted, this.dialScope())
      if (!this.running) return
      this.events.emitEvent('service.resolved', { name: service, providers })
      // Filtered before the machine sees them: it only ever dials trusted providers.
      const { trusted, untrusted } = splitProviders(providers, rule)
      this.trust.note(tunnel, service, rule, trusted, untrusted)
      this.dispatch({ type: 'resolved', tunnel, providers: trusted })
    } catch (err) {
      if (!this.running) return
      this.dispatch({ type: 'resolve-failed', tunnel, error: (err as Error).message })
      this.events.emitEvent('service.resolve-failed', {
        name: service, attempt, retryInMs: this.timerDelay(`retry:${tunnel}`), error: (err as Error).message
      })
    }
  }

  /** A by-name tunnel to a service this node exposes itself, over the same transport. */
  private exposesItself (tunnel: string): boolean {
    const spec = this.tunnelSpec(tunnel)
    if (spec == null || spec.peer != null) return false
    return [...this.config.expose, ...this.config.exposeNet].some(e => e.name === spec.service && e.transport === spec.transport)
  }

  private tunnelSpec (tunnel: string): TunnelSpec | undefined {
    return this.config.tunnels.find(t => t.id === tunnel)
  }

  /** Dials by peer id (known or DHT-found addresses), else through each connected bootstrap's relay. */
  private async dialPeer (peer: string, signal: AbortSignal): Promise<{ connection?: Connection, errors: string[] }> {
    const errors: string[] = []
    const dialSignal = (): AbortSignal => AbortSignal.any([signal, AbortSignal.timeout(DIAL_TIMEOUT_MS)])
    try {
      return { connection: await this.swarm.dial(peerIdFromString(peer), { signal: dialSignal() }), errors }
    } catch (err) {
      errors.push((err as Error).message)
    }
    // A peer behind NAT may be reachable only through the relay slot it holds on our bootstrap (or the --relay-mode relay).
    for (const relay of relaysFor(this.config.relayMode, this.connectedBootstraps())) {
      if (signal.aborted) break
      try {
        return { connection: await this.swarm.dial(multiaddr(`${relay}/p2p-circuit/p2p/${peer}`), { signal: dialSignal() }), errors }
      } catch (err) {
        errors.push((err as Error).message)
      }
    }
    return { errors }
  }

  private async connect (tunnel: string, peer: string): Promise<void> {
    if (peer === this.peerId) {
      this.dispatch({ type: 'connected', tunnel, peer, path: 'direct' })
      return
    }
    const { connection, errors } = await this.dialPeer(peer, this.shutdown.signal)
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

  private async punch (peer: string, attempt: number): Promise<void> {
    try {
      await this.puncher.punch(peer, attempt)
      if (this.running) this.dispatch({ type: 'punch-succeeded', peer, attempt })
    } catch (err) {
      if (this.running) this.dispatch({ type: 'punch-failed', peer, attempt, error: (err as Error).message })
    }
  }

  private bestPath (peer: string): Path | 'none' {
    const open = this.swarm.getConnections(peerIdFromString(peer)).filter(c => c.status === 'open')
    if (open.some(c => pathOf(c) === 'direct')) return 'direct'
    return open.length > 0 ? 'relay' : 'none'
  }

  private activate (tunnel: string, peer: string, path: Path): void {
    const listener = this.listeners.get(tunnel)
    if (listener == null) return
    const spec = this.tunnelSpec(tunnel)
    let rule: TrustRule | undefined
    try {
      // Our own service needs no trust, and pinning ourselves would shut out the real providers.
      rule = spec != null && spec.peer == null && peer !== this.peerId ? this.trust.ruleFor(spec.service, spec.trust) : undefined
    } catch (err) {
      // The known-providers file broke since the lookup: trust nothing until it is fixed.
      queueMicrotask(() => this.dispatch({ type: 'stream-failed', tunnel, error: (err as Error).message }))
      return
    }
    if (rule?.trusted != null && !rule.trusted.has(peer)) {
      // Pinned (or forgotten and re-pinned) to another provider since the lookup: look again.
      this.trust.warnUntrusted(tunnel, spec?.service ?? '', peer)
      queueMicrotask(() => this.dispatch({ type: 'stream-failed', tunnel, error: 'provider no longer trusted' }))
      return
    }
    const goLive = (now: Path): void => {
      this.trust.clearReason(tunnel)
      listener.activate(this.routeTo(peer))
      this.events.emitEvent('tunnel.activated', { tunnel, peer, service: this.state.tunnels[tunnel]?.service ?? '', path: now })
    }
    if (rule?.source === 'first-use' && spec != null) {
      // First use: the listener takes connections only once this provider is the pinned one,
      // so none reaches a provider that loses a race for the pin.
      void this.trust.pinFirstUse(tunnel, spec.service, peer).then(pinned => {
        const t = this.state.tunnels[tunnel]
        if (!this.running || t?.peer !== peer || (t.status !== 'direct' && t.status !== 'relayed')) return
        // The path may have changed while the pin was written: say the one it has now.
        if (pinned) goLive(t.status === 'direct' ? 'direct' : 'relay')
        else this.dispatch({ type: 'stream-failed', tunnel, error: 'another provider was pinned' })
      })
      return
    }
    goLive(path)
  }

  private deactivate (tunnel: string, reason: string): void {
    const listener = this.listeners.get(tunnel)
    const t = this.state.tunnels[tunnel]
    listener?.deactivate()
    this.events.emitEvent('tunnel.deactivated', { tunnel, peer: t?.peer ?? '', service: t?.service ?? '', reason })
  }

  /** New streams always take the best connection at the time they open: direct once one exists, then a spliced (unlimited) relayed one. */
  private routeTo (peer: string): TunnelRoute {
    if (peer === this.peerId) return this.selfRoute()
    const peerId = peerIdFromString(peer)
    return {
      peer,
      openStream: async (signal, protocol = TUNNEL_PROTOCOL) => {
        const connections = this.swarm.getConnections(peerId)
          .filter(c => c.status === 'open')
          .sort((a, b) => rank(b) - rank(a))
        const connection = connections[0]
        if (connection == null) throw new Error(`no connection to ${peer}`)
        const stream = await connection.newStream(protocol, {
          signal, runOnLimitedConnection: true, maxOutboundStreams: MAX_TUNNEL_STREAMS
        })
        return { stream, path: pathOf(connection) }
      }
    }
  }

  /**
   * A by-name tunnel to our own service: each stream is one end of an in-process pair whose
   * other end our expose handler serves as it would a peer's, admission and events included.
   */
  private selfRoute (): TunnelRoute {
    const self: SelfConnection = { remotePeer: this.swarm.peerId, direct: true, remoteAddr: multiaddr(`/p2p/${this.peerId}`) }
    return {
      peer: this.peerId,
      openStream: async (signal, protocol = TUNNEL_PROTOCOL) => {
        signal.throwIfAborted()
        const handler = this.exposeHandlers.get(protocol)
        if (handler == null || !this.running) throw new Error(`not serving ${protocol}`)
        const [outbound, inbound] = await streamPair({ delay: 0 })
        void handler(inbound, self)
        return { stream: outbound, path: 'direct' }
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

/** What the expose handlers read of the connection a stream came on. */
type SelfConnection = Pick<Connection, 'remotePeer' | 'direct' | 'remoteAddr'>
type ExposeHandler = (stream: Stream, connection: SelfConnection) => Promise<void>

/** Direct beats relayed; among relayed, a spliced connection beats a circuit. */
function rank (connection: Connection): number {
  return (pathOf(connection) === 'direct' ? 2 : 0) + (isSpliced(connection) ? 1 : 0)
}
