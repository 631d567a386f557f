/**
 * A private node's membership of the mesh: dialing its bootstraps, holding a relay slot on
 * one of them, and noticing when either is lost. The phase machine decides when; this
 * module carries out its dial-bootstrap and reserve-relay commands.
 */
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection } from '@libp2p/interface'
import type { NodeConfig } from '../config.ts'
import { DIAL_TIMEOUT_MS } from '../constants.ts'
import type { NodeEvents } from '../events.ts'
import { relaysFor } from '../relay.ts'
import type { Loop } from '../runner.ts'
import type { Swarm } from '../swarm.ts'

export class Membership {
  private readonly config: NodeConfig
  private readonly swarm: Swarm
  private readonly events: NodeEvents
  private readonly loop: Loop
  /** Bootstrap peer id -> the address it was configured with. */
  private readonly bootstrapPeers = new Map<string, string>()

  constructor (config: NodeConfig, swarm: Swarm, events: NodeEvents, loop: Loop) {
    this.config = config
    this.swarm = swarm
    this.events = events
    this.loop = loop
    for (const addr of config.bootstrap) {
      const id = multiaddr(addr).getComponents().findLast(c => c.name === 'p2p')?.value
      if (id != null) this.bootstrapPeers.set(id, addr)
    }
  }

  /** Whether `peer` is one of our configured bootstraps. */
  isBootstrap (peer: string): boolean {
    return this.bootstrapPeers.has(peer)
  }

  /** Our relay slot's addresses (circuits through the relay), when we hold one. */
  relayAddrs (): string[] {
    return this.swarm.getMultiaddrs().map(ma => ma.toString()).filter(a => a.includes('/p2p-circuit'))
  }

  /** The relays to dial a private peer through, best first (--relay-mode, else our connected bootstraps). */
  relays (): string[] {
    return relaysFor(this.config.relayMode, this.connectedBootstraps())
  }

  async dialBootstrap (addr: string): Promise<void> {
    try {
      await this.swarm.dial(multiaddr(addr), { signal: this.loop.signal(DIAL_TIMEOUT_MS) })
      if (this.loop.running) this.loop.dispatch({ type: 'bootstrap-connected', addr })
    } catch (err) {
      if (!this.loop.running) return
      const b = this.loop.state.bootstraps[addr]
      const failures = (b?.failures ?? 0) + 1
      this.loop.dispatch({ type: 'bootstrap-dial-failed', addr, error: (err as Error).message })
      this.events.emitEvent('bootstrap.dial-failed', {
        addr, attempt: failures, retryInMs: this.loop.timerDelay(`bootstrap:${addr}`), error: (err as Error).message
      })
    }
  }

  async reserveRelay (): Promise<void> {
    const relay = this.relays()[0]
    if (relay == null) {
      this.loop.dispatch({ type: 'relay-failed', error: 'no bootstrap connected' })
      return
    }
    try {
      await this.swarm.services.internals.transportManager.listen([multiaddr(`${relay}/p2p-circuit`)])
      if (!this.loop.running) return
      this.loop.dispatch({ type: 'relay-reserved' })
      this.events.emitEvent('relay.reserved', { relay, addrs: this.relayAddrs() })
    } catch (err) {
      if (!this.loop.running) return
      this.loop.dispatch({ type: 'relay-failed', error: (err as Error).message })
      this.events.emitEvent('relay.reserve-failed', { relay, retryInMs: this.loop.timerDelay('relay'), error: (err as Error).message })
    }
  }

  /** On a change of our own addresses: a reserved slot whose circuit addresses are gone was lost. */
  checkRelay (): void {
    const state = this.loop.state
    if (this.loop.running && state.relay === 'reserved' && this.relayAddrs().length === 0) {
      const relay = this.relays()[0] ?? Object.keys(state.bootstraps)[0] ?? ''
      this.events.emitEvent('relay.lost', { relay })
      this.loop.dispatch({ type: 'relay-lost' })
    }
  }

  /** On a closed connection: a bootstrap with no connection left is disconnected. */
  onConnectionClosed (connection: Connection, peerConnected: boolean): void {
    const bootstrap = this.bootstrapPeers.get(connection.remotePeer.toString())
    if (bootstrap != null && !peerConnected && this.loop.state.bootstraps[bootstrap]?.connected === true) {
      this.loop.dispatch({ type: 'bootstrap-disconnected', addr: bootstrap })
    }
  }

  private connectedBootstraps (): string[] {
    return Object.entries(this.loop.state.bootstraps).filter(([, b]) => b.connected).map(([addr]) => addr)
  }
}
