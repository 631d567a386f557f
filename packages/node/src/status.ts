/**
 * The status snapshot's shape (`punchgate status`, the control socket, metrics): plain
 * data, in a module of its own so readers of a status need not import the node.
 */
import type { Path } from './events.ts'
import type { RelaySlot, TunnelStatus } from './phase/types.ts'
import type { ListenerTotals } from './protocol/listener.ts'
import type { ServiceDescription } from './protocol/services.ts'

export interface TunnelInfo extends ListenerTotals {
  tunnel: string
  service: string
  bind: string
  status: TunnelStatus
  peer?: string
  /** Path new connections take: set while the tunnel is live. */
  path?: Path
  /** TCP connections (UDP: senders with a session) open right now. */
  connections: number
  /** By-name tunnels: providers of the service the last lookup found and skipped as untrusted. */
  untrusted?: string[]
  /** Why the tunnel is down, when every provider found is untrusted. */
  reason?: string
}

export interface ConnectedPeer {
  peer: string
  path: Path
  addrs: string[]
  rttMs?: number
}

/** A snapshot for `punchgate status`: plain data, JSON-serialisable. */
export interface NodeStatus {
  peerId: string
  role: 'public' | 'private'
  /** Why it has that role, in words (`--role public`, `reachable at 11.0.0.3:4001`); absent from older daemons. */
  roleReason?: string
  phase: string
  /** When the node started (ISO 8601). */
  startedAt: string
  listenAddrs: string[]
  announcedAddrs: string[]
  /** Addresses peers saw us at (identify), confirmed or not: what a NAT maps us to. */
  observedAddrs: string[]
  /**
   * A private node's relay reservations: `state` sums them up (reserved: at least one held),
   * `relays` lists each relay (peer id) tried, `addrs` our circuit addresses through them.
   */
  relay: {
    state: 'off' | 'none' | 'reserving' | 'reserved'
    addrs: string[]
    relays?: Array<{ peer: string, status: RelaySlot['status'] }>
  }
  /** A public node's splice listener (docs/splice.md): where, pairs copying now, bytes copied both ways. */
  splice?: { addr: string, active: number, copied: number }
  peers: ConnectedPeer[]
  services: ServiceDescription[]
  tunnels: TunnelInfo[]
  /** A private node's port mappings on its router (docs/nat-traversal.md); absent with --no-port-mapping and on public nodes. */
  portMappings?: Array<{ protocol: 'tcp' | 'udp', internal: string, external: string, method: 'nat-pmp' | 'pcp' | 'upnp-igd', gateway: string, expiresAt: string }>
  /** The Prometheus scrape URL, with `--metrics`. */
  metrics?: string
}
