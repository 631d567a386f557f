/**
 * Port mapping for a node (node.ts loads this module only for a private node with mapping
 * on): which ports, and how a granted mapping becomes an announced address.
 */
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { NodeEvents } from '../events.ts'
import type { Swarm } from '../swarm.ts'
import { natPmpClient, upnpClient } from './client.ts'
import { pcpClient } from './pcp.ts'
import { defaultGateway, type Gateway } from './gateway.ts'
import { PortMapper, type ActiveMapping, type LocalPort, type PortMapTiming } from './portmap.ts'

export type { ActiveMapping } from './portmap.ts'

/** The TCP and QUIC listen ports bound to `localIp` (libp2p lists 0.0.0.0 as each interface's address). */
export function listenPorts (addrs: Multiaddr[], localIp: string): LocalPort[] {
  const ports = new Map<string, LocalPort>()
  for (const ma of addrs) {
    const [ip, transport, third, ...rest] = ma.getComponents()
    if (ip?.name !== 'ip4' || ip.value !== localIp || transport?.value == null) continue
    const port = Number(transport.value)
    const tcp = transport.name === 'tcp' && third == null
    const quic = transport.name === 'udp' && third?.name === 'quic-v1' && rest.length === 0
    if (!(tcp || quic) || !(port > 0)) continue
    const local: LocalPort = { protocol: tcp ? 'tcp' : 'udp', port }
    ports.set(`${local.protocol}/${port}`, local)
  }
  return [...ports.values()]
}

/** The mapped address as libp2p announces it: the external IP and port in place of the listener's. */
function externalAddr (m: ActiveMapping): Multiaddr {
  return multiaddr(`/ip4/${m.externalIp}/${m.protocol}/${m.externalPort}${m.protocol === 'udp' ? '/quic-v1' : ''}`)
}

export interface PortMapping {
  mappings: () => ActiveMapping[]
  stop: () => Promise<void>
}

export function startPortMapping (swarm: Swarm, events: NodeEvents, options: { gateway?: () => Promise<Gateway | undefined>, timing?: Partial<PortMapTiming> } = {}): PortMapping {
  const { addressManager, transportManager } = swarm.services.internals
  const mapper = new PortMapper({
    events,
    gateway: options.gateway ?? (async () => defaultGateway()),
    // NAT-PMP first: a router that speaks PCP as well answers it the same; PCP for those that
    // speak only PCP; UPnP-IGD last (an SSDP search, XML, HTTP).
    methods: [{ method: 'nat-pmp', create: natPmpClient }, { method: 'pcp', create: pcpClient }, { method: 'upnp-igd', create: upnpClient }],
    ports: gateway => listenPorts(transportManager.getAddrs(), gateway.localIp),
    announce: m => {
      addressManager.addPublicAddressMapping(m.internalIp, m.internalPort, m.externalIp, m.externalPort, m.protocol)
      // The router told us: verified for as long as the lease holds (renewals confirm it again).
      addressManager.confirmObservedAddr(externalAddr(m), { type: 'ip-mapping', ttl: Math.max(0, m.expiresAt - Date.now()) })
    },
    withdraw: m => {
      addressManager.removePublicAddressMapping(m.internalIp, m.internalPort, m.externalIp, m.externalPort, m.protocol)
    },
    ...(options.timing != null ? { timing: options.timing } : {})
  })
  mapper.start()
  return { mappings: () => mapper.mappings(), stop: async () => mapper.stop() }
}
