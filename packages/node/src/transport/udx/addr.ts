/**
 * Addresses of the UDP transport (transport/udx/transport.ts): `/ip4/A/udp/P/udx`, or
 * `/ip6/A/udp/P/udx` over IPv6 (no NAT there, the same punch: docs/nat-traversal.md).
 *
 * `udx` is registered here under a code from the multicodec private-use range: such an
 * address never leaves the node in a form another implementation must parse. The
 * transport listens outside libp2p's address manager (nothing announces it); punch
 * candidates travel as plain `/ip4/A/udp/P` (docs/protocol.md); the only `/udx` address
 * a peer sees is the observed address identify reports on a udx connection, and only a
 * node running this transport makes one.
 */
import { isIPv6 } from 'node:net'
import { multiaddr, registry, type Multiaddr } from '@multiformats/multiaddr'

export const UDX_PROTOCOL_NAME = 'udx'
/** Multicodec private-use range (0x300000-0x3fffff). */
export const UDX_PROTOCOL_CODE = 0x300d58

try {
  registry.getProtocol(UDX_PROTOCOL_NAME)
} catch {
  registry.addProtocol({ code: UDX_PROTOCOL_CODE, name: UDX_PROTOCOL_NAME, size: 0 })
}

export interface HostPort { host: string, port: number }

const IP_PROTOCOLS = new Set(['ip4', 'ip6'])

/** `/ip4|ip6/A/udp/P/udx` (any `/p2p/...` after it ignored), else undefined. */
export function udxHostPort (ma: Multiaddr): HostPort | undefined {
  const [ip, udp, udx] = ma.getComponents()
  if (ip == null || !IP_PROTOCOLS.has(ip.name) || udp?.name !== 'udp' || udx?.name !== UDX_PROTOCOL_NAME || ip.value == null || udp.value == null) return undefined
  return { host: ip.value, port: Number(udp.value) }
}

/** A plain UDP candidate (`/ip4|ip6/A/udp/P`, as the punch exchange carries it), else undefined. */
export function udpHostPort (addr: string): HostPort | undefined {
  try {
    const components = multiaddr(addr).getComponents()
    const [ip, udp] = components
    if (components.length !== 2 || ip == null || !IP_PROTOCOLS.has(ip.name) || udp?.name !== 'udp' || ip.value == null || udp.value == null) return undefined
    const port = Number(udp.value)
    return port > 0 && port < 65536 ? { host: ip.value, port } : undefined
  } catch {
    return undefined
  }
}

function ipProtocol (host: string): string {
  return isIPv6(host) ? 'ip6' : 'ip4'
}

export function udxAddr ({ host, port }: HostPort): Multiaddr {
  return multiaddr(`/${ipProtocol(host)}/${host}/udp/${port}/${UDX_PROTOCOL_NAME}`)
}

export function udpCandidate ({ host, port }: HostPort): string {
  return `/${ipProtocol(host)}/${host}/udp/${port}`
}
