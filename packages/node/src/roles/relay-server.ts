/**
 * The circuit relay server of a node that may change role (`--role auto` with a
 * bootstrap). @libp2p/circuit-relay-v2's server cannot be added to a running node, and its
 * stop() is final (it aborts a controller that every later relayed connection would
 * inherit), so it is built with the node (swarm.ts, when config.ts's mayBePublic()), and
 * switched here: closed, its hop protocol is not handled (peers do not see a relay) and
 * the gater refuses reservations (relay.ts: relayGater's `open`, no race with a reservation
 * that arrives before the protocol is gone); opened, it handles the protocol again.
 * Relayed connections already running when it closes run on to their limits.
 */
import { RELAY_V2_HOP_CODEC } from '@libp2p/circuit-relay-v2'
import type { Swarm } from '../swarm.ts'

/** The parts of the relay server this switch uses; `started` is its own flag, reset so start() handles the protocol again. */
interface RelayServer {
  start: () => Promise<void>
  started: boolean
  reservationStore: { clear: () => void }
}

export class RelayServerSwitch {
  private readonly swarm: Swarm
  private opened: boolean

  constructor (swarm: Swarm, open: boolean) {
    this.swarm = swarm
    this.opened = open
  }

  /** For the gater: whether reservations are taken now. */
  get open (): boolean {
    return this.opened
  }

  async openServer (): Promise<void> {
    this.opened = true
    await this.server()?.start()
  }

  /** Refuses reservations from now on, forgets those held, and stops handling the hop protocol. */
  async closeServer (): Promise<void> {
    this.opened = false
    const server = this.server()
    if (server == null) return
    server.reservationStore.clear()
    await this.swarm.unhandle(RELAY_V2_HOP_CODEC)
    server.started = false
  }

  private server (): RelayServer | undefined {
    return (this.swarm.services as { relay?: RelayServer }).relay
  }
}
