/**
 * Roles from reachability: a public node answers the reach probe (reachability/server.ts)
 * and lists the peers it verified for `/punchgate/relays/1.0.0`.
 */
import type { NodeEvents } from '../events.ts'
import type { Loop } from '../runner.ts'
import type { Swarm } from '../swarm.ts'
import { ReachServer, type VerifiedPeer } from '../reachability/server.ts'

export interface ReachabilityInit {
  swarm: Swarm
  events: NodeEvents
  loop: Loop
}

export class Reachability {
  private readonly swarm: Swarm
  private readonly loop: Loop
  private readonly server: ReachServer
  private serving = false

  constructor (init: ReachabilityInit) {
    this.swarm = init.swarm
    this.loop = init.loop
    this.server = new ReachServer({
      connected: peer => this.swarm.getConnections().some(c => c.status === 'open' && c.remotePeer.toString() === peer),
      onProbe: report => init.events.emitEvent('reach.probed', report)
    })
  }

  /** A public node answers reach probes from the start. */
  async start (): Promise<void> {
    if (this.loop.state.role === 'public') await this.serve()
  }

  /**
   * The public peers our reach probe verified and that are still connected, newest first:
   * what `/punchgate/relays/1.0.0` vouches for. Empty on a private node.
   */
  verifiedPublicPeers (): VerifiedPeer[] {
    return this.serving ? this.server.verifiedPublicPeers() : []
  }

  private async serve (): Promise<void> {
    if (this.serving) return
    this.serving = true
    await this.server.serve(this.swarm)
  }
}
