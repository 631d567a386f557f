/**
 * A private node's membership of the mesh: dialing its bootstraps and noticing when one is
 * lost. The phase machine decides when; this module carries out its dial-bootstrap command.
 * Relay slots are relays/choice.ts's: it hears of each bootstrap that connects or goes.
 */
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection } from '@libp2p/interface'
import type { NodeConfig } from '../config.ts'
import { DIAL_TIMEOUT_MS } from '../constants.ts'
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
    try {
      await this.swarm.dial(multiaddr(addr), { signal: this.loop.signal(DIAL_TIMEOUT_MS) })
      if (!this.loop.running) return
      this.loop.dispatch({ type: 'bootstrap-connected', addr })
      const peer = peerOf(addr)
      if (peer != null) this.onBootstrap(peer, true)
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

  /** On a closed connection: a bootstrap with no connection left is disconnected. */
  onConnectionClosed (connection: Connection, peerConnected: boolean): void {
    const peer = connection.remotePeer.toString()
    const bootstrap = this.bootstrapPeers.get(peer)
    if (bootstrap != null && !peerConnected && this.loop.state.bootstraps[bootstrap]?.connected === true) {
      this.loop.dispatch({ type: 'bootstrap-disconnected', addr: bootstrap })
      this.onBootstrap(peer, false)
    }
  }
}

function peerOf (addr: string): string | undefined {
  return multiaddr(addr).getComponents().findLast(c => c.name === 'p2p')?.value
}
