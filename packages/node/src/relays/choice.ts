/**
 * A private node's relays (docs/ARCHITECTURE.md, "Roles"): which relays it may reserve on
 * (the candidates it reports to the phase machine: connected bootstraps first, then the
 * public nodes they vouch for over `/punchgate/relays/1.0.0`), the reservations themselves
 * (the machine's reserve-relay command), noticing one is lost, and the relays a dial to a
 * private peer may go through. The machine (phase/relays.ts) decides which to reserve and when.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { NodeConfig } from '../config.ts'
import { MAX_RELAY_RESERVATIONS, RELAYS_REFRESH_MS, RELAYS_TIMEOUT_MS } from '../constants.ts'
import type { NodeEvents } from '../events.ts'
import type { CandidateScope } from '../holepunch/candidates.ts'
import { pathOf } from '../protocol/expose.ts'
import type { RelaySlot } from '../phase/types.ts'
import type { Loop } from '../runner.ts'
import type { Swarm } from '../swarm.ts'
import { askRelays, type VouchedRelay } from './vouch.ts'

export interface RelayChoiceInit {
  config: NodeConfig
  swarm: Swarm
  events: NodeEvents
  loop: Loop
  /** What a peer may make us dial (holepunch/candidates.ts): applied to vouched addresses. */
  scope: () => CandidateScope
}

/** The peer id at the end of a multiaddr (`.../p2p/<id>`). */
export function peerOfAddr (addr: string): string | undefined {
  return multiaddr(addr).getComponents().findLast(c => c.name === 'p2p')?.value
}

export class RelayChoice {
  private readonly config: NodeConfig
  private readonly swarm: Swarm
  private readonly events: NodeEvents
  private readonly loop: Loop
  private readonly scope: () => CandidateScope
  /** Configured bootstraps (and the --relay-mode relay): peer id -> the address it was given with. */
  private readonly configured = new Map<string, string>()
  /** The last answer of each bootstrap (by peer id) that vouched for public nodes. */
  private readonly vouched = new Map<string, VouchedRelay[]>()
  private refresh?: ReturnType<typeof setInterval>

  constructor (init: RelayChoiceInit) {
    this.config = init.config
    this.swarm = init.swarm
    this.events = init.events
    this.loop = init.loop
    this.scope = init.scope
    const mode = init.config.relayMode
    for (const addr of mode.mode === 'fixed' ? [mode.addr, ...init.config.bootstrap] : init.config.bootstrap) {
      const id = peerOfAddr(addr)
      if (id != null && !this.configured.has(id)) this.configured.set(id, addr)
    }
  }

  private get enabled (): boolean {
    return this.loop.state.role === 'private' && this.config.relayMode.mode !== 'off'
  }

  /**
   * Every RELAYS_REFRESH_MS while private with fewer relays than wanted: ask the bootstraps
   * again and report the candidates (a node whose role changed back to private starts here).
   */
  start (): void {
    if (this.config.relayMode.mode === 'off' || this.config.bootstrap.length === 0) return
    this.refresh = setInterval(() => {
      if (!this.enabled || this.held().length >= MAX_RELAY_RESERVATIONS) return
      this.update()
      void this.askBootstraps()
    }, RELAYS_REFRESH_MS)
    this.refresh.unref()
    this.loop.shutdownSignal.addEventListener('abort', () => clearInterval(this.refresh), { once: true })
  }

  /**
   * The relays we may reserve on, best first: with --relay-mode RELAY only that one; else
   * the connected bootstraps (in configured order), then the public nodes they vouched for.
   */
  candidates (): string[] {
    const mode = this.config.relayMode
    if (mode.mode === 'off') return []
    if (mode.mode === 'fixed') return [peerOfAddr(mode.addr)].filter((id): id is string => id != null)
    const self = this.swarm.peerId.toString()
    const list = this.connectedBootstraps()
    for (const bootstrap of this.configured.keys()) {
      for (const relay of this.vouched.get(bootstrap) ?? []) list.push(relay.peer)
    }
    return [...new Set(list)].filter(r => r !== self)
  }

  /** Tells the machine the current candidates, when they changed. */
  update (): void {
    if (!this.enabled || !this.loop.running) return
    const relays = this.candidates()
    const known = this.loop.state.relayCandidates
    if (relays.length === known.length && relays.every((r, i) => known[i] === r)) return
    this.loop.dispatch({ type: 'relay-candidates', relays })
  }

  /** A bootstrap connected or went away: candidates change; a new one is asked whom it vouches for. */
  onBootstrap (peer: string, connected: boolean): void {
    this.update()
    if (connected) void this.ask(peer)
  }

  /** Relays held (reserved), by peer id. */
  held (): string[] {
    return Object.entries(this.loop.state.relays).filter(([, s]) => s.status === 'reserved').map(([r]) => r)
  }

  /** Whether we hold (or are making) a reservation on `peer`: its splice offers are welcome. */
  holds (peer: string): boolean {
    const status = this.loop.state.relays[peer]?.status
    return status === 'reserved' || status === 'reserving'
  }

  /**
   * The relays a dial to a private peer may go through, best first, as multiaddrs to put
   * `/p2p-circuit/p2p/<peer>` after: those we hold a slot on, then every other one we know.
   */
  dialVia (): string[] {
    const held = new Set(this.held())
    const all = this.candidates()
    return [...all.filter(r => held.has(r)), ...all.filter(r => !held.has(r))].map(r => this.addrOf(r))
  }

  /** Our circuit addresses, through every relay held. */
  relayAddrs (): string[] {
    return this.swarm.getMultiaddrs().map(ma => ma.toString()).filter(a => a.includes('/p2p-circuit'))
  }

  status (): Array<{ peer: string, status: RelaySlot['status'] }> {
    return Object.entries(this.loop.state.relays).map(([peer, slot]) => ({ peer, status: slot.status }))
  }

  /** The reserve-relay command: listen on `<relay>/p2p-circuit`, and report the outcome to the machine. */
  async reserve (relay: string): Promise<void> {
    const addr = this.addrOf(relay)
    try {
      await this.swarm.services.internals.transportManager.listen([multiaddr(`${addr}/p2p-circuit`)])
      if (!this.loop.running) return
      this.loop.dispatch({ type: 'relay-reserved', relay })
      this.events.emitEvent('relay.reserved', { relay: addr, addrs: this.circuitsThrough(relay) })
    } catch (err) {
      if (!this.loop.running) return
      this.loop.dispatch({ type: 'relay-failed', relay, error: (err as Error).message })
      this.events.emitEvent('relay.reserve-failed', { relay: addr, retryInMs: this.loop.timerDelay(`relay:${relay}`), error: (err as Error).message })
    }
  }

  /** On a change of our own addresses: a reserved slot whose circuit addresses are gone was lost. */
  checkRelays (): void {
    if (!this.enabled || !this.loop.running) return
    const lost = this.held().filter(relay => this.circuitsThrough(relay).length === 0)
    for (const relay of lost) this.lose(relay)
    // Another public node may take its place: ask the bootstraps whom they know now.
    if (lost.length > 0) void this.askBootstraps()
  }

  /**
   * A connection to `peer` closed: a slot held on it is lost once no direct connection to it
   * is left, whatever our addresses say (a reservation lives on its connection). Noticing it
   * only from our addresses failed once in CI: a restarted relay was reconnected, but its
   * circuit address had stayed, so the slot was never taken again (reliability lab).
   */
  onConnectionClosed (peer: string): void {
    if (!this.enabled || !this.loop.running || this.loop.state.relays[peer]?.status !== 'reserved') return
    const open = this.swarm.getConnections(peerIdFromString(peer)).some(c => c.status === 'open' && pathOf(c) === 'direct')
    if (open) return
    this.lose(peer)
    void this.askBootstraps()
  }

  private lose (relay: string): void {
    this.events.emitEvent('relay.lost', { relay: this.addrOf(relay) })
    this.loop.dispatch({ type: 'relay-lost', relay })
  }

  private circuitsThrough (relay: string): string[] {
    return this.relayAddrs().filter(a => a.includes(`/p2p/${relay}/p2p-circuit`))
  }

  /**
   * How to reach a relay, as a multiaddr ending in its /p2p/ id: the address it was
   * configured with, else the one we are connected to it on, else a vouched address (TCP first).
   */
  private addrOf (relay: string): string {
    const configured = this.configured.get(relay)
    if (configured != null) return configured
    const open = this.swarm.getConnections(peerIdFromString(relay)).find(c => c.status === 'open' && pathOf(c) === 'direct')
    if (open != null) {
      const addr = open.remoteAddr.toString()
      return addr.endsWith(`/p2p/${relay}`) ? addr : `${addr}/p2p/${relay}`
    }
    const vouched = [...this.vouched.values()].flat().find(r => r.peer === relay)?.addrs ?? []
    const addr = vouched.find(a => a.includes('/tcp/')) ?? vouched[0]
    return addr != null ? `${addr}/p2p/${relay}` : `/p2p/${relay}`
  }

  private connectedBootstraps (): string[] {
    return Object.entries(this.loop.state.bootstraps)
      .filter(([, b]) => b.connected)
      .map(([addr]) => peerOfAddr(addr))
      .filter((id): id is string => id != null)
  }

  private async askBootstraps (): Promise<void> {
    await Promise.all(this.connectedBootstraps().map(async peer => this.ask(peer)))
  }

  /** Asks one bootstrap whom it vouches for (auto mode only); its answer replaces its last one. */
  private async ask (bootstrap: string): Promise<void> {
    if (!this.enabled || this.config.relayMode.mode !== 'auto') return
    let relays: VouchedRelay[]
    try {
      relays = await askRelays(this.swarm, peerIdFromString(bootstrap), this.scope(), this.loop.signal(RELAYS_TIMEOUT_MS))
    } catch {
      // An older bootstrap without the protocol, one that went away, or asked too often: keep what we had.
      return
    }
    if (!this.loop.running) return
    for (const relay of relays) {
      await this.swarm.peerStore.merge(peerIdFromString(relay.peer), { multiaddrs: relay.addrs.map(a => multiaddr(a)) }).catch(() => {})
    }
    const before = (this.vouched.get(bootstrap) ?? []).map(r => r.peer).join(' ')
    this.vouched.set(bootstrap, relays)
    if (relays.map(r => r.peer).join(' ') !== before) {
      this.events.emitEvent('relay.vouched', { bootstrap, relays: relays.map(r => r.peer) })
    }
    this.update()
  }
}
