/**
 * A private node's membership of the mesh: dialing its bootstraps and noticing when one is
 * lost. The phase machine decides when; this module carries out its dial-bootstrap command.
 * Relay slots are relays/choice.ts's: it hears of each bootstrap that connects or goes.
 */
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection } from '@libp2p/interface'
import type { NodeConfig } from '../config.ts'
import { DIAL_TIMEOUT_MS } from '../constants.ts'
import { BootstrapPeerMismatchError } from '../errors.ts'
import { pathOf } from '../protocol/expose.ts'
import type { NodeEvents } from '../events.ts'
import type { Loop } from '../runner.ts'
import type { Swarm } from '../swarm.ts'

export class Membership {
  private readonly swarm: Swarm
  private readonly events: NodeEvents
  private readonly loop: Loop
  /** Bootstrap peer id -> the address it was configured with. */
  private readonly bootstrapPeers = new Map<string, string>()

  /** Told when a bootstrap (by peer id) connects or loses its last connection. */
  private readonly onBootstrap: (peer: string, connected: boolean) => void

  constructor (config: NodeConfig, swarm: Swarm, events: NodeEvents, loop: Loop, onBootstrap: (peer: string, connected: boolean) => void = () => {}) {
    this.swarm = swarm
    this.events = events
    this.loop = loop
    this.onBootstrap = onBootstrap
    for (const addr of config.bootstrap) {
      const id = peerOf(addr)
      if (id != null) this.bootstrapPeers.set(id, addr)
    }
  }

  /** Whether `peer` is one of our configured bootstraps. */
  isBootstrap (peer: string): boolean {
    return this.bootstrapPeers.has(peer)
  }

  async dialBootstrap (addr: string): Promise<void> {
    const peer = peerOf(addr)
    try {
      if (peer == null || !this.hasDirectConnection(peer)) await this.dialExactly(addr, peer)
      if (!this.loop.running) return
      this.markConnected(addr, peer)
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

  /**
   * Dials the configured address and nothing else. With its `/p2p/` part, libp2p would join
   * a dial of the peer already under way (the DHT's, over every address identify told us):
   * after a bootstrap restart, its QUIC address (a closed UDP port does not fail a QUIC
   * handshake, which waits out its 5 s) held such a dial, and the redial with it, 5-7 s.
   * Without it the dial is our own, and the peer id is checked here.
   */
  private async dialExactly (addr: string, peer: string | undefined): Promise<void> {
    const target = multiaddr(addr)
    const connection = await this.swarm.dial(peer == null ? target : target.decapsulateCode(P2P_CODE), { signal: this.loop.signal(DIAL_TIMEOUT_MS) })
    if (peer != null && connection.remotePeer.toString() !== peer) {
      await connection.close().catch(() => {})
      throw new BootstrapPeerMismatchError(addr, connection.remotePeer.toString())
    }
  }

  /** A bootstrap is connected once any direct connection to it opens (ours, the DHT's, or its dial to us). */
  private markConnected (addr: string, peer: string | undefined): void {
    if (this.loop.state.bootstraps[addr]?.connected === true) return
    this.loop.dispatch({ type: 'bootstrap-connected', addr })
    if (peer != null) this.onBootstrap(peer, true)
  }

  private hasDirectConnection (peer: string): boolean {
    return this.swarm.getConnections().some(c => c.remotePeer.toString() === peer && c.status === 'open' && pathOf(c) === 'direct')
  }

  /**
   * On a connection opened or closed: a bootstrap with a direct connection is connected (a
   * redial scheduled meanwhile finds it so and does nothing); one with none left is disconnected.
   */
  onConnectionChanged (connection: Connection, opened: boolean, peerConnected: boolean): void {
    const peer = connection.remotePeer.toString()
    const bootstrap = this.bootstrapPeers.get(peer)
    if (bootstrap == null) return
    if (opened) {
      if (pathOf(connection) === 'direct') this.markConnected(bootstrap, peer)
    } else if (!peerConnected && this.loop.state.bootstraps[bootstrap]?.connected === true) {
      this.loop.dispatch({ type: 'bootstrap-disconnected', addr: bootstrap })
      this.onBootstrap(peer, false)
    }
  }
}

/** The multiaddr code of `/p2p/<peer id>`. */
const P2P_CODE = 421

function peerOf (addr: string): string | undefined {
  return multiaddr(addr).getComponents().findLast(c => c.name === 'p2p')?.value
}
