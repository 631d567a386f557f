/**
 * The one router port mapping may ask: the IPv4 default gateway of this host's own routing
 * table, and our address on the interface that reaches it. Nothing a peer says and nothing
 * another LAN host announces changes which router that is (docs/security.md).
 *
 * Linux only for now: the table is read from /proc/net/route. Elsewhere there is no
 * gateway, so port mapping does nothing (docs/nat-traversal.md, "Port mapping").
 */
import { readFile } from 'node:fs/promises'
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os'

export interface Gateway {
  /** The router's LAN address, e.g. 192.168.1.1. */
  ip: string
  /** Our interface towards it, e.g. eth0. */
  iface: string
  /** Our IPv4 address on that interface: the internal host of every mapping. */
  localIp: string
}

const RTF_UP = 0x1
const RTF_GATEWAY = 0x2

/** `0100A8C0` (/proc/net/route's little-endian hex) as `192.168.0.1`. */
function hexToIPv4 (hex: string): string | undefined {
  if (!/^[0-9A-Fa-f]{8}$/.test(hex)) return undefined
  const n = parseInt(hex, 16)
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join('.')
}

/** The default routes of a /proc/net/route table, lowest metric first. */
export function parseRouteTable (text: string): Array<{ iface: string, gateway: string }> {
  const routes: Array<{ iface: string, gateway: string, metric: number }> = []
  for (const line of text.split('\n').slice(1)) {
    const [iface, destination, gatewayHex, flags, , , metric, mask] = line.trim().split(/\s+/)
    if (iface == null || destination !== '00000000' || mask !== '00000000' || gatewayHex == null) continue
    const f = parseInt(flags ?? '0', 16)
    if ((f & RTF_UP) === 0 || (f & RTF_GATEWAY) === 0) continue
    const gateway = hexToIPv4(gatewayHex)
    if (gateway == null || gateway === '0.0.0.0') continue
    routes.push({ iface, gateway, metric: Number(metric ?? 0) })
  }
  return routes.sort((a, b) => a.metric - b.metric).map(({ iface, gateway }) => ({ iface, gateway }))
}

export interface GatewaySources {
  readRoutes?: () => Promise<string>
  interfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>
}

/** The default gateway and our address towards it; undefined when there is none (or no table to read). */
export async function defaultGateway (sources: GatewaySources = {}): Promise<Gateway | undefined> {
  const readRoutes = sources.readRoutes ?? (async () => readFile('/proc/net/route', 'utf8'))
  let text: string
  try {
    text = await readRoutes()
  } catch {
    return undefined
  }
  const interfaces = (sources.interfaces ?? networkInterfaces)()
  for (const { iface, gateway } of parseRouteTable(text)) {
    const local = interfaces[iface]?.find(i => i.family === 'IPv4' && !i.internal)
    if (local != null) return { ip: gateway, iface, localIp: local.address }
  }
  return undefined
}
