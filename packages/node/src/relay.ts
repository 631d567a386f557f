/**
 * Relay choice (`--relay-mode`) and whom a public node relays for (`--relay-allow`).
 * Pure helpers: the runner asks which relays to use, the swarm gets the gater.
 */
import type { ConnectionGater, PeerId } from '@libp2p/interface'
import type { NodeConfig, RelayMode } from './config.ts'

/**
 * The relays (multiaddrs ending in the relay's /p2p/ id) to reserve a slot on and to
 * dial through, best first: the configured one, or the connected bootstraps, or none.
 */
export function relaysFor (mode: RelayMode, connectedBootstraps: string[]): string[] {
  switch (mode.mode) {
    case 'auto': return connectedBootstraps
    case 'fixed': return [mode.addr]
    case 'off': return []
    default: {
      const unreachable: never = mode
      return unreachable
    }
  }
}

/**
 * With `--relay-allow allowed`, the relay server takes reservations only from allowed
 * peers and relays only between two allowed peers. Everything else is left to libp2p.
 */
export function relayGater (config: Pick<NodeConfig, 'relayAllow' | 'allow'>): ConnectionGater {
  if (config.relayAllow !== 'allowed') return {}
  const allowed = new Set(config.allow)
  const denied = (peer: PeerId): boolean => !allowed.has(peer.toString())
  return {
    denyInboundRelayReservation: async (source: PeerId) => denied(source),
    denyOutboundRelayedConnection: async (source: PeerId, destination: PeerId) => denied(source) || denied(destination)
  }
}
