/**
 * Which peer-supplied addresses this node may dial (docs/nat-traversal.md, "What a peer can
 * make us dial"). A punch candidate or a provider record's address is chosen by the remote
 * side: without this filter a stranger picks a target on our loopback, our LAN or our own
 * listener, and we connect to it for them.
 *
 * Never: loopback, unspecified, link-local, multicast, broadcast/reserved, our own addresses.
 * Private ranges (RFC 1918, 100.64/10, fc00::/7, ...): only inside one of our interfaces'
 * subnets, where a peer on our LAN really is. IPv4-mapped IPv6 is judged as the IPv4 it maps.
 * Everything else (public space, the NAT lab's 11.0.0.0/8) may be dialled.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net'
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'

type Family = 'ipv4' | 'ipv6'

function blockList (subnets: Array<[string, number, Family]>): BlockList {
  const list = new BlockList()
  for (const [address, prefix, family] of subnets) list.addSubnet(address, prefix, family)
  return list
}

const NEVER = blockList([
  ['0.0.0.0', 8, 'ipv4'], // "this network", unspecified
  ['127.0.0.0', 8, 'ipv4'],
  ['169.254.0.0', 16, 'ipv4'],
  ['224.0.0.0', 4, 'ipv4'], // multicast
  ['240.0.0.0', 4, 'ipv4'], // reserved, broadcast
  ['::', 96, 'ipv6'], // unspecified, loopback, deprecated IPv4-compatible
  ['fe80::', 10, 'ipv6'],
  ['ff00::', 8, 'ipv6']
])

const LOOPBACK = blockList([['127.0.0.0', 8, 'ipv4'], ['::1', 128, 'ipv6']])

const PRIVATE = blockList([
  ['10.0.0.0', 8, 'ipv4'],
  ['172.16.0.0', 12, 'ipv4'],
  ['192.168.0.0', 16, 'ipv4'],
  ['100.64.0.0', 10, 'ipv4'], // carrier-grade NAT
  ['192.0.0.0', 24, 'ipv4'], // IETF protocol assignments
  ['192.0.2.0', 24, 'ipv4'], // TEST-NET-1..3
  ['198.51.100.0', 24, 'ipv4'],
  ['203.0.113.0', 24, 'ipv4'],
  ['198.18.0.0', 15, 'ipv4'], // benchmarking
  ['fc00::', 7, 'ipv6'], // unique local
  ['fec0::', 10, 'ipv6'], // deprecated site-local
  ['2001:db8::', 32, 'ipv6'] // documentation
])

/** What the filter knows about this node. */
export interface CandidateScope {
  /** Our interfaces' addresses, loopback included (os.networkInterfaces()). */
  interfaces: NetworkInterfaceInfo[]
  /** Exact addresses (`/ip4/A/tcp/P`) that are ours though no interface has them: observed NAT mappings. */
  ownAddrs?: Iterable<string>
  /**
   * Tests only: loopback counts as a usable address (every node of an in-process test mesh is
   * on 127.0.0.1). Never set by the daemon.
   */
  allowLoopback?: boolean
}

const MAPPED = blockList([['::ffff:0:0', 96, 'ipv6']])

/** The IPv4 address an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) stands for, else the address itself. */
export function unmapped (ip: string): { ip: string, family: Family } {
  if (isIPv4(ip)) return { ip, family: 'ipv4' }
  if (!isIPv6(ip) || !MAPPED.check(ip, 'ipv6')) return { ip, family: 'ipv6' }
  const tail = ip.slice(ip.lastIndexOf(':') + 1)
  if (isIPv4(tail)) return { ip: tail, family: 'ipv4' }
  const [hi = 0, lo = 0] = ip.split(':').slice(-2).map(g => parseInt(g === '' ? '0' : g, 16))
  return { ip: `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`, family: 'ipv4' }
}

const GLOBAL_UNICAST = blockList([['2000::', 3, 'ipv6']])

/**
 * A global unicast IPv6 address (2000::/3) outside the private ranges above (so not the
 * documentation prefix 2001:db8::/32): one a peer anywhere may dial, if a firewall lets it.
 */
export function globalIPv6 (address: string): boolean {
  return isIPv6(address) && GLOBAL_UNICAST.check(address, 'ipv6') && !PRIVATE.check(address, 'ipv6')
}

/** Not loopback (unless a test says so), unspecified, link-local, multicast or reserved. */
function routable (ip: string, family: Family, allowLoopback: boolean): boolean {
  if (LOOPBACK.check(ip, family)) return allowLoopback
  return !NEVER.check(ip, family)
}

/** Whether `subnet` (an interface's `address/prefix`) holds `ip`. */
function inSubnet (iface: NetworkInterfaceInfo, ip: string, family: Family): boolean {
  const net = unmapped(iface.address)
  if (net.family !== family || iface.cidr == null) return false
  const prefix = Number(iface.cidr.split('/')[1])
  // A mapped interface address keeps its IPv6 prefix length: 96 bits of it are the mapping.
  const bits = iface.family === 'IPv6' && family === 'ipv4' ? prefix - 96 : prefix
  return bits >= 0 && blockList([[net.ip, bits, family]]).check(ip, family)
}

/** Whether this node may dial `ip` on a peer's word. */
export function usableIp (address: string, scope: CandidateScope): boolean {
  if (!isIPv4(address) && !isIPv6(address)) return false
  const { ip, family } = unmapped(address)
  const allowLoopback = scope.allowLoopback === true
  if (!routable(ip, family, allowLoopback)) return false
  if (LOOPBACK.check(ip, family)) return true
  if (scope.interfaces.some(i => unmapped(i.address).ip === ip)) return false
  if (!PRIVATE.check(ip, family)) return true
  return scope.interfaces.some(i => !LOOPBACK.check(unmapped(i.address).ip, unmapped(i.address).family) && inSubnet(i, ip, family))
}

/** The IP of a multiaddr that starts with one; undefined for DNS names and the like. */
function ipOf (ma: Multiaddr): string | undefined {
  const first = ma.getComponents()[0]
  return first != null && (first.name === 'ip4' || first.name === 'ip6') ? first.value : undefined
}

/** A punch candidate (`/ip4|ip6/A/tcp/P`) this node may dial, i.e. one of its own addresses it is not. */
export function usableCandidate (addr: string, scope: CandidateScope): boolean {
  let ma: Multiaddr
  try {
    ma = multiaddr(addr)
  } catch {
    return false
  }
  const ip = ipOf(ma)
  if (ip == null || !usableIp(ip, scope)) return false
  // Candidates are plain `/ipX/A/tcp/P` (wire.ts), like our own: compared in multiaddr's normal form.
  const own = new Set([...scope.ownAddrs ?? []].map(a => multiaddr(a).toString()))
  return !own.has(ma.toString())
}

export function usableCandidates (addrs: string[], scope: CandidateScope): string[] {
  return addrs.filter(a => usableCandidate(a, scope))
}

/**
 * Which of our own addresses to send a peer: loopback (outside tests), unspecified,
 * link-local and multicast never; private ones go out, the peer's filter judges them.
 */
export function offerable (addrs: string[], scope: Pick<CandidateScope, 'allowLoopback'>): string[] {
  return addrs.filter(a => {
    try {
      const ip = ipOf(multiaddr(a))
      if (ip == null) return false
      const { ip: v, family } = unmapped(ip)
      return routable(v, family, scope.allowLoopback === true)
    } catch {
      return false
    }
  })
}

/**
 * A provider record's address: a plain IP address must pass the candidate filter; a relay
 * circuit stays usable when its relay is one we are connected to (libp2p reuses that
 * connection) or its relay hop passes the filter too, else it would aim a dial as well.
 * Anything else (DNS names) is dropped.
 */
export function usableProviderAddr (ma: Multiaddr, scope: CandidateScope, connected: (peer: string) => boolean = () => false): boolean {
  const components = ma.getComponents()
  const circuit = components.findIndex(c => c.name === 'p2p-circuit')
  if (circuit >= 0) {
    const relay = components.slice(0, circuit).findLast(c => c.name === 'p2p')?.value
    if (relay != null && connected(relay)) return true
    if (circuit === 1 && relay != null) return true // `/p2p/RELAY/p2p-circuit`: no address of the peer's choosing
  }
  const ip = ipOf(ma)
  return ip != null && usableIp(ip, scope)
}

/** This host's scope, read now: interfaces come and go (DHCP, VPNs). */
export function localScope (options: { ownAddrs?: Iterable<string>, allowLoopback?: boolean } = {}, interfaces = networkInterfaces): CandidateScope {
  return {
    interfaces: Object.values(interfaces()).flatMap(list => list ?? []),
    ...(options.ownAddrs != null ? { ownAddrs: options.ownAddrs } : {}),
    ...(options.allowLoopback === true ? { allowLoopback: true } : {})
  }
}

/** Whether `address` is in a private range (RFC 1918, 100.64/10, fc00::/7, ...): an address behind a NAT or inside a LAN. */
export function isPrivateIp (address: string): boolean {
  if (!isIPv4(address) && !isIPv6(address)) return false
  const { ip, family } = unmapped(address)
  return PRIVATE.check(ip, family)
}

/**
 * The addresses this node announces (identify, provider records, a relay's reservation
 * answers, which clients turn into circuit addresses): none whose first IP is loopback,
 * unspecified, link-local, multicast or reserved, judged for a circuit by its relay hop, as a
 * peer on another host can use none of them. A node whose every own address is loopback, or
 * that has none (tests, a mesh on one host) keeps them: they are all it has, and its peers
 * share its loopback.
 * Issue 19: a relay listening on 0.0.0.0 handed out `/ip4/127.0.0.1/tcp/4001/p2p/R/p2p-circuit`,
 * and its clients published it.
 */
export function announceable (addrs: Multiaddr[]): Multiaddr[] {
  const routableIp = (ma: Multiaddr, allowLoopback: boolean): boolean => {
    const ip = ipOf(ma)
    if (ip == null) return true // DNS names and the like: the operator's words
    const { ip: v, family } = unmapped(ip)
    return routable(v, family, allowLoopback)
  }
  const direct = addrs.filter(ma => !ma.getComponents().some(c => c.name === 'p2p-circuit'))
  const isLoopback = (ma: Multiaddr): boolean => { const ip = ipOf(ma); return ip != null && LOOPBACK.check(unmapped(ip).ip, unmapped(ip).family) }
  // Nothing but loopback, or no address of its own at all (reached through relays only).
  const onlyLoopback = direct.every(isLoopback)
  return addrs.filter(ma => routableIp(ma, onlyLoopback))
}
