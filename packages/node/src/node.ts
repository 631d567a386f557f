/**
 * startNode(): builds the swarm, composes the roles around the loop (runner.ts), and owns
 * the order of start and stop and the status snapshot. The roles (roles/) carry out the
 * phase machine's commands; this file turns libp2p's connection events into machine events.
 */
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { RELAY_V2_HOP_CODEC } from '@libp2p/circuit-relay-v2'
import type { Connection, PrivateKey } from '@libp2p/interface'
import { mayBePublic, startsPublic, type NodeConfig } from './config.ts'
import { DIAL_TIMEOUT_MS, DRAIN_TIMEOUT_MS, MAX_PROVIDER_RECORDS_KEPT, MAX_PROVIDER_RECORDS_KEPT_PER_PEER, PROVIDER_REFUSED_LOG_MS } from './constants.ts'
import { ListenError } from './errors.ts'
import { bootstrapHint } from './bootstrap-hint.ts'
import { NodeEvents, type Path } from './events.ts'
import type { Logger } from './logger.ts'
import { pathOf } from './protocol/expose.ts'
import { describeServices } from './protocol/services.ts'
import { drainConnections } from './drain.ts'
import { startRttReporter, type RttReporter } from './rtt.ts'
import { DEFAULT_TIMING, initialState, type Timing } from './phase/machine.ts'
import type { ConnectedPeer, NodeStatus, TunnelInfo } from './status.ts'
import { createSwarm, type Swarm } from './swarm.ts'
import { ObservedAddresses } from './holepunch/observed.ts'
import { HolePuncher } from './holepunch/puncher.ts'
import { watchTcpObservers } from './holepunch/tcp-observer.ts'
import { startLiveness } from './liveness.ts'
import { UdpObserver } from './holepunch/udp-observe.ts'
import { findUdx } from './transport/udx/transport.ts'
import { CappedProviderStore, refusalReporter, type ProviderCaps } from './provider-caps.ts'
import { Runner } from './runner.ts'
import { Consumer, type OpenTunnelOptions, type TunnelStream } from './roles/consumer.ts'
import { Membership } from './roles/membership.ts'
import { Provider } from './roles/provider.ts'
import { Splicing } from './roles/relay.ts'
import { initialRole, Reachability, type ReachTiming } from './roles/reachability.ts'
import { RelayServerSwitch } from './roles/relay-server.ts'
import type { PortMapping } from './portmap/index.ts'
import { RelayChoice } from './relays/choice.ts'
import { relaySummary } from './phase/relays.ts'
import { serveRelays, type VouchedRelay } from './relays/vouch.ts'

export type { ConnectedPeer, NodeStatus, TunnelInfo } from './status.ts'
export type { OpenTunnelOptions, TunnelStream } from './roles/consumer.ts'

export interface StartOptions {
  privateKey: PrivateKey
  logger: Logger
  /** Overrides for tests that must not wait for production backoffs. */
  timing?: Partial<Timing>
  /** Server-side handshake timeout (default HANDSHAKE_TIMEOUT_MS), so a hostile-peer test need not wait 10 s. */
  handshakeTimeoutMs?: number
  /** A public node's provider record caps (default MAX_PROVIDER_RECORDS_KEPT_PER_PEER, MAX_PROVIDER_RECORDS_KEPT), smaller in tests. */
  providerCaps?: ProviderCaps
  /** Tests only: the reach probe's re-probe interval and least gap between probes (REACH_REPROBE_MS, REACH_ASK_INTERVAL_MS), and loopback taken as reachable. */
  reachTiming?: ReachTiming
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

export async function startNode (config: NodeConfig, options: StartOptions): Promise<PunchgateNode> {
  // --metrics only: the endpoint's modules (an HTTP server, prom-client) are loaded when asked for.
  const metricsModule = config.metrics != null ? await import('./metrics.ts') : undefined
  const registry = metricsModule?.createRegistry()
  // A node that may become public keeps the capped store from the start: kad-dht takes its datastore once.
  const providers = mayBePublic(config)
    ? new CappedProviderStore({ self: peerIdFromPrivateKey(options.privateKey).toString(), ...(options.providerCaps ?? { perPeer: MAX_PROVIDER_RECORDS_KEPT_PER_PEER, total: MAX_PROVIDER_RECORDS_KEPT }) })
    : undefined
  let relaySwitch: RelayServerSwitch | undefined
  const swarm = await createSwarm(config, options.privateKey, registry, providers, () => relaySwitch?.open ?? startsPublic(config))
  relaySwitch = new RelayServerSwitch(swarm, startsPublic(config))
  const node = new Node(config, options, swarm, relaySwitch)
  if (providers != null) providers.onRefused = refusalReporter(refusal => node.events.emitEvent('provider.refused', refusal), PROVIDER_REFUSED_LOG_MS)
  if (config.metrics != null && metricsModule != null && registry != null) {
    const metrics = new metricsModule.MetricsServer({ registry, node })
    // Bound before the node starts, like tunnel listeners: a port clash fails fast.
    node.metricsUrl = await metrics.listen(config.metrics)
    node.onStop(async () => metrics.close())
  }
  try {
    await node.start()
  } catch (err) {
    await node.runStopHooks()
    throw err
  }
  return node
}

function portMappingStatus (portMapping: PortMapping): NonNullable<NodeStatus['portMappings']> {
  return portMapping.mappings().map(m => ({
    protocol: m.protocol,
    internal: `${m.internalIp}:${m.internalPort}`,
    external: `${m.externalIp}:${m.externalPort}`,
    method: m.method,
    gateway: m.gateway,
    expiresAt: new Date(m.expiresAt).toISOString()
  }))
}

class Node implements PunchgateNode {
  readonly events: NodeEvents
  readonly swarm: Swarm
  metricsUrl?: string
  private readonly config: NodeConfig
  private readonly runner: Runner
  private readonly membership: Membership
  /** A private node's relay slots and the relays it dials through (relays/choice.ts). */
  private readonly relays: RelayChoice
  private readonly provider: Provider
  private readonly consumer: Consumer
  /** Splicing for peers (public) or through our bootstraps (private): roles/relay.ts. */
  private readonly splicing: Splicing
  private readonly puncher: HolePuncher
  /** UDP punching: our UDP mapping, asked of peers, and answered for them. */
  private readonly udpObserver?: UdpObserver
  /** The reach probe and the role it decides (roles/reachability.ts). */
  readonly reachability: Reachability
  private readonly peerPaths = new Map<string, Path>()
  private stopping?: Promise<void>
  private readonly stopHooks: Array<() => Promise<void>> = []
  private startedAt = new Date(0)
  private rtt?: RttReporter
  private portMapping?: PortMapping

  constructor (config: NodeConfig, options: StartOptions, swarm: Swarm, relayServer: RelayServerSwitch) {
    this.config = config
    this.swarm = swarm
    this.events = new NodeEvents(options.logger)
    this.runner = new Runner(initialState({
      bootstraps: config.bootstrap,
      services: [...config.expose, ...config.exposeNet].map(e => e.name),
      tunnels: config.tunnels,
      relayOff: config.relayMode.mode === 'off',
      role: initialRole(config).role,
      roleReason: initialRole(config).reason
    }), { ...DEFAULT_TIMING, ...options.timing }, this.events)
    const loop = this.runner
    this.relays = new RelayChoice({ config, swarm, events: this.events, loop, scope: () => this.consumer.dialScope() })
    this.membership = new Membership(config, swarm, this.events, loop, (peer, connected) => this.relays.onBootstrap(peer, connected))
    this.provider = new Provider({ config, swarm, events: this.events, loop, handshakeTimeoutMs: options.handshakeTimeoutMs })
    this.consumer = new Consumer({
      config,
      swarm,
      events: this.events,
      loop,
      provider: this.provider,
      relays: () => this.relays.dialVia(),
      loopbackCandidates: options.loopbackCandidates === true
    })
    this.splicing = new Splicing({
      config,
      swarm,
      events: this.events,
      // Splice offers come from the relays we hold a slot on (and our bootstraps).
      isRelay: peer => this.membership.isBootstrap(peer) || this.relays.holds(peer),
      signal: ms => loop.signal(ms),
      running: () => loop.running,
      onStop: hook => this.onStop(hook)
    })
    this.reachability = new Reachability({
      config,
      swarm,
      events: this.events,
      loop,
      isBootstrap: peer => this.membership.isBootstrap(peer),
      relayServer,
      splicing: this.splicing,
      ...(options.reachTiming != null ? { timing: options.reachTiming } : {})
    })
    const udx = findUdx(swarm.services.internals.transportManager.getTransports())
    if (udx != null) this.udpObserver = new UdpObserver(swarm, udx)
    this.puncher = new HolePuncher({
      swarm,
      ...(this.udpObserver != null ? { udp: this.udpObserver } : {}),
      observed: new ObservedAddresses(swarm, () => swarm.services.internals.transportManager.getAddrs()),
      events: this.events,
      mayPunchWith: peer => this.provider.mayServe(peer) || this.consumer.isMeeting(peer),
      scope: ownAddrs => this.consumer.dialScope(ownAddrs)
    })
    this.consumer.puncher = this.puncher
    this.runner.handle({
      'dial-bootstrap': c => { void this.membership.dialBootstrap(c.addr) },
      'reserve-relay': c => { void this.relays.reserve(c.relay) },
      publish: () => { void this.provider.publish() },
      resolve: c => { void this.consumer.resolve(c.tunnel, c.service, c.attempt) },
      connect: c => { void this.consumer.connect(c.tunnel, c.peer) },
      punch: c => { void this.consumer.punch(c.peer, c.attempt) },
      activate: c => { this.consumer.activate(c.tunnel, c.peer, c.path) },
      deactivate: c => { this.consumer.deactivate(c.tunnel, c.reason) }
    })
  }

  get peerId (): string {
    return this.swarm.peerId.toString()
  }

  addrs (): string[] {
    return this.swarm.getMultiaddrs().map(ma => ma.toString())
  }

  tunnels (): TunnelInfo[] {
    return this.consumer.tunnels()
  }

  async openTunnelStream (options: OpenTunnelOptions): Promise<TunnelStream> {
    return this.consumer.openTunnelStream(options)
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
    const state = this.runner.state
    return {
      peerId: this.peerId,
      role: state.role,
      roleReason: state.roleReason,
      phase: state.phase,
      startedAt: this.startedAt.toISOString(),
      listenAddrs: this.swarm.services.internals.transportManager.getAddrs().map(a => a.toString()),
      announcedAddrs: this.addrs(),
      observedAddrs: this.swarm.services.internals.addressManager.getObservedAddrs().map(a => a.toString()),
      relay: { state: relaySummary(state), addrs: this.relays.relayAddrs(), relays: this.relays.status() },
      ...this.splicing.status(),
      peers: [...peers.values()],
      services: describeServices(this.config),
      tunnels: this.tunnels(),
      ...(this.metricsUrl != null ? { metrics: this.metricsUrl } : {}),
      ...(this.portMapping != null ? { portMappings: portMappingStatus(this.portMapping) } : {})
    }
  }

  async start (): Promise<void> {
    await this.consumer.listen()
    await this.provider.start()
    // After drainConnections has unhandled both protocols: no rejection can follow the summaries.
    this.onStop(async () => this.provider.close())
    await this.puncher.start()
    await this.udpObserver?.start()
    this.swarm.addEventListener('connection:open', evt => this.onConnection(evt.detail, true))
    this.swarm.addEventListener('connection:close', evt => this.onConnection(evt.detail, false))
    this.swarm.addEventListener('self:peer:update', () => this.relays.checkRelays())
    // A bootstrap reached over QUIC only gets a TCP connection too: its observation is our punch candidate.
    const stopObserving = watchTcpObservers({ swarm: this.swarm, isBootstrap: peer => this.membership.isBootstrap(peer), signal: this.runner.shutdownSignal })
    this.onStop(async () => stopObserving())
    // A live tunnel's connections are pinged every second: a dead path (an address change) is noticed in seconds.
    const stopLiveness = startLiveness({ swarm: this.swarm, events: this.events, watched: () => this.livenessPeers() })
    this.onStop(async () => stopLiveness())
    await serveRelays(this.swarm, () => this.vouchFor())
    if (this.config.mdns) {
      // @libp2p/mdns only reports peers; joining them is up to us.
      this.swarm.addEventListener('peer:discovery', evt => {
        if (!this.runner.running || this.swarm.getConnections(evt.detail.id).length > 0) return
        this.swarm.dial(evt.detail.id, { signal: this.runner.signal(DIAL_TIMEOUT_MS) }).catch(() => {})
      })
    }

    try {
      // Bound before the swarm starts, like tunnel listeners: a clash on an explicit port fails fast.
      await this.splicing.bind()
    } catch (err) {
      await this.consumer.close()
      throw err
    }
    try {
      await this.swarm.start()
    } catch (err) {
      await this.consumer.close()
      throw new ListenError(this.config.listen, (err as Error).message)
    }

    this.startedAt = new Date()
    await this.splicing.start()
    await this.reachability.start()
    if (this.config.rttIntervalMs > 0) {
      const rtt = startRttReporter({ swarm: this.swarm, events: this.events, intervalMs: this.config.rttIntervalMs })
      this.rtt = rtt
      this.onStop(async () => rtt.stop())
    }
    this.provider.announceUnrestricted()
    const role = this.runner.state.role
    if (role === 'private' && this.config.portMapping) {
      // Loaded only here: a public node, or one with --no-port-mapping, never loads the mapper.
      const portMapping = (await import('./portmap/index.ts')).startPortMapping(this.swarm, this.events)
      this.portMapping = portMapping
      // A stop hook runs before the swarm stops: the mappings are deleted while it still listens.
      this.onStop(async () => portMapping.stop())
    }
    this.events.emitEvent('node.started', { peerId: this.peerId, addrs: this.addrs(), role })
    if (role === 'public') this.events.emitEvent('node.bootstrap-hint', bootstrapHint(this.addrs()))
    this.runner.dispatch({ type: 'start' })
    this.relays.start()
    // Back to private: the relay candidates were not kept while public (phase/relays.ts).
    this.events.onEvent('role.changed', e => { if (e.to === 'private') this.relays.update() })
  }

  /**
   * The public nodes we vouch for over `/punchgate/relays/1.0.0`: those our reach probe
   * verified reachable and still connected (roles/reachability.ts), and that relay now (they
   * list the relay protocol: a node our probe reached through a full-cone NAT stays private
   * and relays for nobody); none on a private node.
   */
  private async vouchFor (): Promise<VouchedRelay[]> {
    const verified = this.reachability.verifiedPublicPeers()
    const relaying = await Promise.all(verified.map(async v => {
      const peer = await this.swarm.peerStore.get(peerIdFromString(v.peer)).catch(() => undefined)
      return peer?.protocols.includes(RELAY_V2_HOP_CODEC) === true
    }))
    return verified.filter((_, i) => relaying[i])
  }

  /** Whose connections liveness.ts checks: live tunnels' peers, the relays of their circuits, our bootstraps; none without a live tunnel. */
  private livenessPeers (): Set<string> {
    const self = this.peerId
    const peers = new Set(Object.values(this.runner.state.tunnels)
      .filter(t => t.peer != null && t.peer !== self && (t.status === 'direct' || t.status === 'relayed'))
      .map(t => t.peer as string))
    if (peers.size === 0) return peers
    for (const c of this.swarm.getConnections()) {
      const remote = c.remotePeer.toString()
      if (this.membership.isBootstrap(remote)) peers.add(remote)
      if (!peers.has(remote)) continue
      const hops = c.remoteAddr.getComponents()
      const circuit = hops.findIndex(h => h.name === 'p2p-circuit')
      const relay = circuit > 0 ? hops.slice(0, circuit).findLast(h => h.name === 'p2p')?.value : undefined
      if (relay != null) peers.add(relay)
    }
    return peers
  }

  async stop (options: StopOptions = {}): Promise<void> {
    this.stopping ??= (async () => {
      this.runner.stop()
      this.puncher.stop()
      this.udpObserver?.stop()
      await drainConnections({
        listeners: this.consumer.localListeners(),
        served: this.provider.served,
        stopServing: async () => this.provider.stopServing(),
        events: this.events,
        timeoutMs: options.drainMs ?? DRAIN_TIMEOUT_MS
      })
      await this.consumer.close()
      await this.runStopHooks()
      await this.swarm.stop()
      this.events.emitEvent('node.stopped', { peerId: this.peerId })
    })()
    return this.stopping
  }

  /** Registers a cleanup for stop(): helpers started beside the roles (metrics, RTT probes, the splicer). */
  onStop (hook: () => Promise<void>): void {
    this.stopHooks.push(hook)
  }

  async runStopHooks (): Promise<void> {
    const hooks = this.stopHooks.splice(0)
    await Promise.all(hooks.map(async hook => hook()))
  }

  /** libp2p's connection events, as the machine's: a bootstrap lost, a peer's best path changed. */
  private onConnection (connection: Connection, opened: boolean): void {
    const peer = connection.remotePeer.toString()
    const fields = { peer, direct: pathOf(connection) === 'direct', addr: connection.remoteAddr.toString() }
    this.events.emitEvent(opened ? 'peer.connected' : 'peer.disconnected', fields)
    if (!this.runner.running) return

    if (!opened) this.relays.onConnectionClosed(peer)
    const path = this.consumer.bestPath(peer)
    this.membership.onConnectionChanged(connection, opened, path !== 'none')
    const previous = this.peerPaths.get(peer) ?? 'none'
    if (path === previous) return
    if (path === 'none') this.peerPaths.delete(peer)
    else this.peerPaths.set(peer, path)
    this.runner.dispatch({ type: 'peer-path', peer, path })
  }
}
