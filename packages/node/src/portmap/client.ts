/**
 * The router's side of port mapping, over @achingbrain/nat-port-mapper (NAT-PMP and
 * UPnP-IGD v2; it has no PCP). The library is imported only once the gateway has answered
 * our own probe (probe.ts), so a node whose router speaks neither never loads it
 * (docs/performance.md).
 *
 * The library's own refresh timers are off (`autoRefresh: false`): portmap.ts renews.
 * Each NAT-PMP operation uses a fresh library gateway: the library sends a request once and
 * keeps it at the head of its queue until an answer comes, so after one unanswered request
 * every later one would wait forever.
 */
import type { Gateway } from './gateway.ts'
import { answersNatPmp, answersSsdp } from './probe.ts'

export type MappingMethod = 'nat-pmp' | 'pcp' | 'upnp-igd'
export type MappingProtocol = 'tcp' | 'udp'

export interface MapRequest {
  protocol: MappingProtocol
  internalPort: number
  /** The external port to ask for; the router may give another. */
  externalPort: number
  lifetimeS: number
}

export interface Lease {
  externalIp: string
  externalPort: number
  /** The lifetime the mapping has from now on, as far as we know. */
  lifetimeS: number
}

/** One router, spoken to by one method. */
export interface MappingClient {
  readonly method: MappingMethod
  map: (request: MapRequest, signal: AbortSignal) => Promise<Lease>
  unmap: (request: MapRequest, signal: AbortSignal) => Promise<void>
  close: () => Promise<void>
}

/** Finds the router's service for one method; rejects when it does not answer in time. */
export type ClientFactory = (gateway: Gateway, signal: AbortSignal) => Promise<MappingClient>

/** UPnP-IGD leases shorter than this are raised to it by the library. */
export const UPNP_MIN_LIFETIME_S = 3600

const DESCRIPTION = 'punchgate'

/** NAT-PMP (RFC 6886) to the gateway's port 5351. The library binds UDP 5350 while a request runs. */
export const natPmpClient: ClientFactory = async (gateway, signal) => {
  if (!await answersNatPmp(gateway, signal)) throw new Error('no NAT-PMP answer from the gateway')
  const { pmpNat } = await import('@achingbrain/nat-port-mapper')
  // One at a time: each library gateway binds UDP 5350, and of two bound at once only one
  // receives the router's answers (seen in the lab: deleting the TCP and UDP mappings
  // together timed out one of them).
  let queue: Promise<unknown> = Promise.resolve()
  const once = async <T>(op: (gw: ReturnType<typeof pmpNat>) => Promise<T>): Promise<T> => {
    const run = queue.then(async () => {
      const gw = pmpNat(gateway.ip, { autoRefresh: false, description: DESCRIPTION })
      try {
        return await op(gw)
      } finally {
        await gw.stop().catch(() => {})
      }
    })
    queue = run.catch(() => {})
    return run
  }
  return {
    method: 'nat-pmp',
    map: async (request, signal) => once(async gw => {
      // The library writes `ttl` into the request's lifetime field as it is: seconds here.
      const m = await gw.map(request.internalPort, gateway.localIp, {
        protocol: request.protocol, externalPort: request.externalPort, ttl: request.lifetimeS, autoRefresh: false, signal
      })
      return { externalIp: m.externalHost, externalPort: m.externalPort, lifetimeS: request.lifetimeS }
    }),
    unmap: async (request, signal) => once(async gw => {
      // NAT-PMP deletes by internal port and protocol; the library's options type omits the protocol.
      const options = { protocol: request.protocol, signal }
      await gw.unmap(request.internalPort, options)
    }),
    close: async () => {}
  }
}

/** What upnpClient needs of the library's UPnP side (tests give a fake LAN). */
export interface IgdDevice {
  host: string
  family: 'IPv4' | 'IPv6'
  map: (internalPort: number, internalHost: string, options: {
    protocol: 'TCP' | 'UDP', externalPort: number, ttl: number, autoRefresh: false, signal: AbortSignal
  }) => Promise<{ externalHost: string, externalPort: number }>
  /** Deletes the mapping of `externalPort` for `protocol` (DeletePortMapping). */
  remove: (externalPort: number, protocol: 'TCP' | 'UDP', signal: AbortSignal) => Promise<void>
}

export interface IgdSearch {
  findGateways: (options: { signal: AbortSignal, searchInterval: number }) => AsyncGenerator<IgdDevice, void, unknown>
}

/** The SSDP search is repeated this often until the gateway answers or the search times out. */
const SSDP_SEARCH_INTERVAL_MS = 500

/**
 * UPnP-IGD v2: an SSDP search on the LAN, and only a device whose description lives on the
 * gateway's own address is used; any other host that answers is ignored.
 */
export function upnpClientFrom (search: () => Promise<IgdSearch>): ClientFactory {
  return async (gateway, signal) => {
    const client = await search()
    let found: IgdDevice | undefined
    for await (const candidate of client.findGateways({ signal, searchInterval: SSDP_SEARCH_INTERVAL_MS })) {
      if (candidate.family === 'IPv4' && candidate.host === gateway.ip) {
        found = candidate
        break
      }
    }
    if (found == null) throw new Error(signal.aborted ? 'no UPnP-IGD v2 device answered on the gateway' : 'search ended without the gateway')
    const igd = found
    return {
      method: 'upnp-igd',
      map: async (request, signal) => {
        const m = await igd.map(request.internalPort, gateway.localIp, {
          protocol: request.protocol === 'tcp' ? 'TCP' : 'UDP',
          externalPort: request.externalPort,
          ttl: request.lifetimeS * 1000,
          autoRefresh: false,
          signal
        })
        return { externalIp: m.externalHost, externalPort: m.externalPort, lifetimeS: Math.max(request.lifetimeS, UPNP_MIN_LIFETIME_S) }
      },
      unmap: async (request, signal) => {
        await igd.remove(request.externalPort, request.protocol === 'tcp' ? 'TCP' : 'UDP', signal)
      },
      // Not the library's stop(): it deletes the way its unmap() does (see igdDevice).
      // Nothing stays open between requests: the SSDP search ended with the loop above.
      close: async () => {}
    }
  }
}

const WAN_IP_CONNECTION_2 = 'urn:schemas-upnp-org:service:WANIPConnection:2'

type LibraryGateway = Awaited<ReturnType<ReturnType<typeof import('@achingbrain/nat-port-mapper').upnpNat>['getGateway']>>

/** The part of the library's UPnP service object that it keeps protected: the device to run SOAP actions on. */
interface DeviceAccess {
  getGateway?: (options: { signal: AbortSignal }) => Promise<{
    run: (service: string, action: string, args: Array<[string, string | number]>, options: { signal: AbortSignal }) => Promise<unknown>
  }>
}

/**
 * The library's UPnP gateway as an IgdDevice. Deletion is our own DeletePortMapping on the
 * library's device: its unmap() names the internal port as the external one, sends no
 * protocol and forgets every mapping of that port at once (against miniupnpd it deleted the
 * TCP mapping of a port and left the UDP one).
 */
function igdDevice (gateway: LibraryGateway): IgdDevice {
  return {
    host: gateway.host,
    family: gateway.family,
    map: async (internalPort, internalHost, options) => gateway.map(internalPort, internalHost, options),
    remove: async (externalPort, protocol, signal) => {
      const access = gateway as unknown as DeviceAccess
      if (typeof access.getGateway !== 'function') throw new Error('@achingbrain/nat-port-mapper has no device to delete through (a newer version?)')
      const device = await access.getGateway({ signal })
      await device.run(WAN_IP_CONNECTION_2, 'DeletePortMapping', [['NewRemoteHost', ''], ['NewExternalPort', externalPort], ['NewProtocol', protocol]], { signal })
    }
  }
}

const libraryUpnp = upnpClientFrom(async () => {
  const { upnpNat } = await import('@achingbrain/nat-port-mapper')
  const client = upnpNat({ autoRefresh: false, description: DESCRIPTION })
  return {
    findGateways: async function * (options) {
      for await (const gateway of client.findGateways(options)) yield igdDevice(gateway)
    }
  }
})

export const upnpClient: ClientFactory = async (gateway, signal) => {
  if (!await answersSsdp(gateway, signal)) throw new Error('no UPnP-IGD v2 device answered on the gateway')
  return libraryUpnp(gateway, signal)
}
