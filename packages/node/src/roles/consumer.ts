/**
 * The consumer role: the configured tunnels (local listeners bound to a remote service),
 * their providers (found by peer id or in the DHT, trusted per roles/consumer-trust.ts),
 * the connection to each (dial, punch, relay fallback) and, per tunnel connection, the best
 * path at the time it opens. Also one-off tunnel streams for `punchgate connect`.
 * Carries out the machine's resolve, connect, punch, activate and deactivate commands.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { Connection, Stream } from '@libp2p/interface'
import type { NodeConfig, TunnelSpec } from '../config.ts'
import { DIAL_TIMEOUT_MS, HANDSHAKE_TIMEOUT_MS, MAX_TUNNEL_STREAMS, PATH_DIED_RECENTLY_MS, TUNNEL_PROTOCOL } from '../constants.ts'
import { findServiceProviders } from '../discovery.ts'
import { NoTrustedProviderError, ServiceNotFoundError, TunnelOpenError, TunnelRejectedError } from '../errors.ts'
import { waitForEvent, type NodeEvents, type Path } from '../events.ts'
import { localScope, type CandidateScope } from '../holepunch/candidates.ts'
import type { HolePuncher } from '../holepunch/puncher.ts'
import { pathOf } from '../protocol/expose.ts'
import type { TunnelRoute } from '../protocol/listener.ts'
import { createLocalListener, type LocalListener } from '../protocol/local-listener.ts'
import { requestTunnel } from '../protocol/request.ts'
import type { Loop } from '../runner.ts'
import { isSpliced } from '../splice/service.ts'
import type { TunnelInfo } from '../status.ts'
import type { Swarm } from '../swarm.ts'
import { noTrustedProviderReason, splitProviders, type TrustRule } from '../trust.ts'
import { ConsumerTrust } from './consumer-trust.ts'
import { dialPeer, type DialOutcome } from '../relays/dial.ts'
import type { Provider } from './provider.ts'

const LOOKUP_TIMEOUT_MS = 20_000

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

export interface ConsumerInit {
  config: NodeConfig
  swarm: Swarm
  events: NodeEvents
  loop: Loop
  /** Our own services, for by-name tunnels to them (served in process). */
  provider: Provider
  /** The relays a private peer may be dialed through, best first. */
  relays: () => string[]
  /** Tests only: loopback addresses count as dialable (holepunch/candidates.ts). */
  loopbackCandidates: boolean
}

export class Consumer {
  private readonly config: NodeConfig
  private readonly swarm: Swarm
  private readonly events: NodeEvents
  private readonly loop: Loop
  private readonly provider: Provider
  private readonly relays: () => string[]
  private readonly loopbackCandidates: boolean
  private readonly listeners = new Map<string, LocalListener>()
  /** Peers an openTunnelStream() is asking or streaming to right now: punching with them is wanted. */
  private readonly meetings = new Map<string, number>()
  /** Provider trust of by-name tunnels and `connect` (roles/consumer-trust.ts). */
  private readonly trust: ConsumerTrust
  /** Set once the node has built it (it needs our dialScope and meetings). */
  puncher?: HolePuncher
  /** Peers whose direct connection liveness.ts dropped for silence, and when. */
  private readonly silentSince = new Map<string, number>()

  constructor (init: ConsumerInit) {
    this.config = init.config
    this.swarm = init.swarm
    this.events = init.events
    this.loop = init.loop
    this.provider = init.provider
    this.relays = init.relays
    this.loopbackCandidates = init.loopbackCandidates
    this.trust = new ConsumerTrust(init.events, init.config.trust, init.config.knownProviders)
    this.events.onEvent('peer.unresponsive', e => { if (!e.addr.includes('/p2p-circuit')) this.silentSince.set(e.peer, Date.now()) })
    this.events.onEvent('peer.connected', e => { if (e.direct) this.silentSince.delete(e.peer) })
  }

  /** Reads the known-providers file (a broken one stops the node here) and binds every tunnel's local port. */
  async listen (): Promise<void> {
    this.trust.refresh()
    for (const spec of this.config.tunnels) {
      const listener = createLocalListener({
        spec,
        events: this.events,
        udpIdleMs: this.config.udpIdleMs,
        onRouteFailed: err => this.loop.dispatch({ type: 'stream-failed', tunnel: spec.id, error: err.message })
      })
      this.listeners.set(spec.id, listener)
    }
    try {
      for (const listener of this.listeners.values()) await listener.listen()
    } catch (err) {
      await this.close()
      throw err
    }
  }

  /** The tunnels' local listeners (draining waits for their connections). */
  localListeners (): LocalListener[] {
    return [...this.listeners.values()]
  }

  async close (): Promise<void> {
    await Promise.all([...this.listeners.values()].map(async l => l.close()))
  }

  /** The configured tunnels as they stand: bound address, state, peer, open connections. */
  tunnels (): TunnelInfo[] {
    return [...this.listeners.entries()].map(([id, listener]) => {
      const t = this.loop.state.tunnels[id]
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

  /** Punch requests are answered for peers we opened a tunnel to (and, per the provider, peers that may use a service). */
  isMeeting (peer: string): boolean {
    return this.meetings.has(peer) || Object.values(this.loop.state.tunnels).some(t => t.peer === peer)
  }

  /** What a peer may make us dial (holepunch/candidates.ts), as this host stands now. */
  dialScope (ownAddrs: string[] = []): CandidateScope {
    return localScope({ ownAddrs, allowLoopback: this.loopbackCandidates })
  }

  async openTunnelStream (options: OpenTunnelOptions): Promise<TunnelStream> {
    const { service } = options
    const signal = AbortSignal.any([this.loop.shutdownSignal, options.signal ?? AbortSignal.timeout(LOOKUP_TIMEOUT_MS + DIAL_TIMEOUT_MS)])
    if (this.loop.state.phase === 'joining') {
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

  /** The resolve command: a by-name tunnel's trusted providers, from the DHT (or ourselves). */
  async resolve (tunnel: string, service: string, attempt: number): Promise<void> {
    if (this.exposesItself(tunnel)) {
      // The DHT never lists ourselves: our own service is served here, through our own expose handler.
      const self = this.swarm.peerId.toString()
      this.events.emitEvent('service.resolved', { name: service, providers: [self] })
      this.loop.dispatch({ type: 'resolved', tunnel, providers: [self] })
      return
    }
    try {
      const rule = this.trust.ruleFor(service, this.tunnelSpec(tunnel)?.trust)
      const providers = await findServiceProviders(this.swarm, service, this.loop.signal(LOOKUP_TIMEOUT_MS), rule.trusted, this.dialScope())
      if (!this.loop.running) return
      this.events.emitEvent('service.resolved', { name: service, providers })
      // Filtered before the machine sees them: it only ever dials trusted providers.
      const { trusted, untrusted } = splitProviders(providers, rule)
      this.trust.note(tunnel, service, rule, trusted, untrusted)
      this.loop.dispatch({ type: 'resolved', tunnel, providers: trusted })
    } catch (err) {
      if (!this.loop.running) return
      this.loop.dispatch({ type: 'resolve-failed', tunnel, error: (err as Error).message })
      this.events.emitEvent('service.resolve-failed', {
        name: service, attempt, retryInMs: this.loop.timerDelay(`retry:${tunnel}`), error: (err as Error).message
      })
    }
  }

  /** The connect command: a connection to the tunnel's provider, on whichever path comes first. */
  async connect (tunnel: string, peer: string): Promise<void> {
    if (peer === this.swarm.peerId.toString()) {
      this.loop.dispatch({ type: 'connected', tunnel, peer, path: 'direct' })
      return
    }
    const { connection, errors } = await this.dialPeer(peer, this.loop.shutdownSignal)
    if (!this.loop.running) return
    if (connection == null) {
      const t = this.loop.state.tunnels[tunnel]
      this.events.emitEvent('tunnel.connect-failed', {
        tunnel, peer, service: t?.service ?? '', attempt: (t?.failures ?? 0) + 1, error: errors.join('; ')
      })
      this.loop.dispatch({ type: 'connect-failed', tunnel, peer, error: errors.join('; ') })
      return
    }
    this.loop.dispatch({ type: 'connected', tunnel, peer, path: this.bestPath(peer) === 'direct' ? 'direct' : 'relay' })
  }

  /** The punch command: one round with `peer` (holepunch/puncher.ts). */
  async punch (peer: string, attempt: number): Promise<void> {
    try {
      if (this.puncher == null) throw new Error('no hole puncher')
      await this.puncher.punch(peer, attempt, reason => {
        // Possibly before the punch command returns: fed back after the machine's current event.
        queueMicrotask(() => { if (this.loop.running) this.loop.dispatch({ type: 'punch-unpromising', peer, reason }) })
      })
      if (this.loop.running) this.loop.dispatch({ type: 'punch-succeeded', peer, attempt })
    } catch (err) {
      if (this.loop.running) this.loop.dispatch({ type: 'punch-failed', peer, attempt, error: (err as Error).message })
    }
  }

  /** The activate command: the tunnel's local port starts taking connections to `peer`. */
  activate (tunnel: string, peer: string, path: Path): void {
    const listener = this.listeners.get(tunnel)
    if (listener == null) return
    const spec = this.tunnelSpec(tunnel)
    let rule: TrustRule | undefined
    try {
      // Our own service needs no trust, and pinning ourselves would shut out the real providers.
      rule = spec != null && spec.peer == null && peer !== this.swarm.peerId.toString() ? this.trust.ruleFor(spec.service, spec.trust) : undefined
    } catch (err) {
      // The known-providers file broke since the lookup: trust nothing until it is fixed.
      queueMicrotask(() => this.loop.dispatch({ type: 'stream-failed', tunnel, error: (err as Error).message }))
      return
    }
    if (rule?.trusted != null && !rule.trusted.has(peer)) {
      // Pinned (or forgotten and re-pinned) to another provider since the lookup: look again.
      this.trust.warnUntrusted(tunnel, spec?.service ?? '', peer)
      queueMicrotask(() => this.loop.dispatch({ type: 'stream-failed', tunnel, error: 'provider no longer trusted' }))
      return
    }
    const goLive = (now: Path): void => {
      this.trust.clearReason(tunnel)
      listener.activate(this.routeTo(peer))
      this.events.emitEvent('tunnel.activated', { tunnel, peer, service: this.loop.state.tunnels[tunnel]?.service ?? '', path: now })
    }
    if (rule?.source === 'first-use' && spec != null) {
      // First use: the listener takes connections only once this provider is the pinned one,
      // so none reaches a provider that loses a race for the pin.
      void this.trust.pinFirstUse(tunnel, spec.service, peer).then(pinned => {
        const t = this.loop.state.tunnels[tunnel]
        if (!this.loop.running || t?.peer !== peer || (t.status !== 'direct' && t.status !== 'relayed')) return
        // The path may have changed while the pin was written: say the one it has now.
        if (pinned) goLive(t.status === 'direct' ? 'direct' : 'relay')
        else this.loop.dispatch({ type: 'stream-failed', tunnel, error: 'another provider was pinned' })
      })
      return
    }
    goLive(path)
  }

  /** The deactivate command: the tunnel's local port stops taking connections. */
  deactivate (tunnel: string, reason: string): void {
    const listener = this.listeners.get(tunnel)
    const t = this.loop.state.tunnels[tunnel]
    listener?.deactivate()
    this.events.emitEvent('tunnel.deactivated', { tunnel, peer: t?.peer ?? '', service: t?.service ?? '', reason })
  }

  /** The best path we have to `peer` now. */
  bestPath (peer: string): Path | 'none' {
    const open = this.swarm.getConnections(peerIdFromString(peer)).filter(c => c.status === 'open')
    if (open.some(c => pathOf(c) === 'direct')) return 'direct'
    return open.length > 0 ? 'relay' : 'none'
  }

  /**
   * Peers of live tunnels to `service` first (their connections are up), then the DHT's
   * providers; only those `--trust` or the pin trusts (docs/access-control.md).
   */
  private async candidatesFor (service: string, signal: AbortSignal): Promise<{ peers: string[], rule: TrustRule }> {
    const rule = this.trust.ruleFor(service)
    const live = Object.values(this.loop.state.tunnels)
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

  /** A by-name tunnel to a service this node exposes itself, over the same transport. */
  private exposesItself (tunnel: string): boolean {
    const spec = this.tunnelSpec(tunnel)
    if (spec == null || spec.peer != null) return false
    return this.provider.exposes(spec.service, spec.transport)
  }

  private tunnelSpec (tunnel: string): TunnelSpec | undefined {
    return this.config.tunnels.find(t => t.id === tunnel)
  }

  /**
   * Dials by peer id (known or DHT-found addresses) and, after a head start, through each
   * relay we hold or know (relays/dial.ts). No head start when our direct connection to the
   * peer just died of silence: its addresses are those of the path that died (our public
   * address or the NATs' mappings changed), and waiting on them held a roaming tunnel ~1 s.
   */
  private async dialPeer (peer: string, signal: AbortSignal): Promise<DialOutcome> {
    const silent = this.silentSince.get(peer)
    const pathDied = silent != null && Date.now() - silent < PATH_DIED_RECENTLY_MS
    if (silent != null && !pathDied) this.silentSince.delete(peer)
    return dialPeer(this.swarm, peer, this.relays, signal, pathDied ? { headStartMs: 0 } : {})
  }

  /** New streams always take the best connection at the time they open: direct once one exists, then a spliced (unlimited) relayed one. */
  private routeTo (peer: string): TunnelRoute {
    if (peer === this.swarm.peerId.toString()) return this.provider.selfRoute()
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
          signal,
          runOnLimitedConnection: true,
          maxOutboundStreams: MAX_TUNNEL_STREAMS,
          // Optimistic protocol select (patches/README.md): the request follows at once, no round trip first.
          negotiateFully: false
        })
        return { stream, path: pathOf(connection) }
      }
    }
  }
}

/**
 * Direct beats relayed, and a direct TCP connection a direct UDP (udx) one, which carried
 * 40% of TCP's rate in the lab (docs/nat-traversal.md); among relayed, a spliced connection
 * beats a circuit.
 */
function rank (connection: Connection): number {
  if (pathOf(connection) === 'direct') return connection.remoteAddr.toString().includes('/udx') ? 2 : 3
  return isSpliced(connection) ? 1 : 0
}
