/**
 * Standard libp2p peers that reach us over a relay. In DCUtR the side the relayed connection
 * came *in* on starts the round (the spec's "B"; js-libp2p's @libp2p/dcutr waits for it), while
 * Punchgate peers start rounds from the tunnel's side themselves (puncher.ts). So for a peer
 * whose identify lists `/libp2p/dcutr` but not `/punchgate/punch/1.0.0`, on an inbound relayed
 * connection, we start up to PUNCH_MAX_ATTEMPTS rounds, as a tunnel would.
 *
 * Who: only peers the puncher would answer (mayStart: relayed, a peer we have a reason to meet,
 * within its rounds per minute, each round counted); at most MAX_STANDARD_PEERS_IN_FLIGHT peers
 * at once, so fresh peer ids buy nothing. What: the same round and candidate filter as any other.
 */
import { setTimeout as delay } from 'node:timers/promises'
import type { Connection, IdentifyResult } from '@libp2p/interface'
import { DCUTR_PROTOCOL, PUNCH_MAX_ATTEMPTS, PUNCH_PROTOCOL, PUNCH_QUICK_RETRY_MS, PUNCH_RETRY_MS } from '../constants.ts'
import type { Swarm } from '../swarm.ts'
import type { PunchRefusal } from '../events.ts'
import { isRelayed } from './connect-direct.ts'

/** What this module needs of the puncher (puncher.ts, which starts it). */
export interface RoundStarter {
  punch: (peer: string, attempt: number) => Promise<unknown>
  mayStart: (connection: Connection) => PunchRefusal | undefined
}

/** Standard peers we run rounds with at once. */
export const MAX_STANDARD_PEERS_IN_FLIGHT = 4

export interface StandardPeersInit {
  swarm: Swarm
  puncher: RoundStarter
}

/** Whether identify says `protocols` are a standard DCUtR peer's, not a Punchgate node's. */
export function isStandardDcutrPeer (protocols: string[]): boolean {
  return protocols.includes(DCUTR_PROTOCOL) && !protocols.includes(PUNCH_PROTOCOL)
}

export class StandardPeers {
  private readonly swarm: Swarm
  private readonly puncher: RoundStarter
  private readonly inFlight = new Set<string>()
  private readonly shutdown = new AbortController()
  private readonly onIdentify = (evt: CustomEvent<IdentifyResult>): void => { this.identified(evt.detail) }

  constructor (init: StandardPeersInit) {
    this.swarm = init.swarm
    this.puncher = init.puncher
  }

  start (): void {
    this.swarm.addEventListener('peer:identify', this.onIdentify)
  }

  stop (): void {
    this.shutdown.abort()
    this.swarm.removeEventListener('peer:identify', this.onIdentify)
  }

  private identified ({ connection, protocols, peerId }: IdentifyResult): void {
    if (!isRelayed(connection) || connection.direction !== 'inbound' || !isStandardDcutrPeer(protocols)) return
    const peer = peerId.toString()
    if (this.inFlight.has(peer) || this.inFlight.size >= MAX_STANDARD_PEERS_IN_FLIGHT) return
    this.inFlight.add(peer)
    void this.rounds(peer, connection).finally(() => this.inFlight.delete(peer))
  }

  /** Rounds until one succeeds, the relayed connection closes, or the peer may not be punched with. */
  private async rounds (peer: string, connection: Connection): Promise<void> {
    for (let attempt = 1; attempt <= PUNCH_MAX_ATTEMPTS; attempt++) {
      if (this.shutdown.signal.aborted || connection.status !== 'open' || this.hasDirect(peer)) return
      // Silent when not: a stranger reconnecting through a relay must not buy log lines either.
      if (this.puncher.mayStart(connection) != null) return
      try {
        await this.puncher.punch(peer, attempt)
        return
      } catch {
        // holepunch.failed told the story; wait as a tunnel would before the next round.
        if (attempt < PUNCH_MAX_ATTEMPTS) {
          await delay(attempt === 1 ? PUNCH_QUICK_RETRY_MS : PUNCH_RETRY_MS, undefined, { signal: this.shutdown.signal }).catch(() => {})
        }
      }
    }
  }

  private hasDirect (peer: string): boolean {
    return this.swarm.getConnections().some(c => c.remotePeer.toString() === peer && c.status === 'open' && !isRelayed(c))
  }
}
