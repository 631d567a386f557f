/**
 * Relay choice (`--relay-mode`) and whom a public node relays for (`--relay-allow`).
 * Pure helpers: the runner asks which relays to use, the swarm gets the gater.
 */
import type { ConnectionGater, PeerId } from '@libp2p/interface'
import type { Limit } from '@libp2p/circuit-relay-v2'
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
 * peers and relays only between two allowed peers. While `open()` says no (a node that
 * may become public but is private now: roles/relay-server.ts), it takes none at all.
 * Everything else is left to libp2p.
 */
export function relayGater (config: Pick<NodeConfig, 'relayAllow' | 'allow'>, open: () => boolean = () => true): ConnectionGater {
  if (config.relayAllow !== 'allowed') return { denyInboundRelayReservation: async () => !open() }
  const allowed = new Set(config.allow)
  const denied = (peer: PeerId): boolean => !allowed.has(peer.toString())
  return {
    denyInboundRelayReservation: async (source: PeerId) => !open() || denied(source),
    denyOutboundRelayedConnection: async (source: PeerId, destination: PeerId) => denied(source) || denied(destination)
  }
}

/**
 * Whom a public node relays without a byte or duration cap: every peer in a private mesh
 * (only holders of the swarm key can connect at all) and the peers on its `--allow` list.
 * Everyone else is a stranger and keeps `--relay-max-bytes` / `--relay-max-duration`.
 */
export function relayTrusted (config: Pick<NodeConfig, 'allow' | 'swarmKey'>): (peer: PeerId) => boolean {
  if (config.swarmKey != null) return () => true
  const allowed = new Set(config.allow)
  return peer => allowed.has(peer.toString())
}

/**
 * The circuit relay server's limit for one relayed connection (a patch of ours,
 * patches/README.md): none when both ends are trusted, else the reservation's (the
 * `--relay-max-*` limits). One stranger end is enough for the cap: it could pump
 * bytes through the relay towards any peer that answers it.
 */
export function relayConnectionLimit (trusted: (peer: PeerId) => boolean): (source: PeerId, destination: PeerId, limit?: Limit) => Limit | undefined {
  return (source, destination, limit) => trusted(source) && trusted(destination) ? undefined : limit
}
