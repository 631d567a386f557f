/**
 * Our TCP addresses as other peers may reach them. identify tells us, for each direct
 * connection, the address the remote observed; with transport/reuseport-tcp.ts that is the
 * NAT's mapping of our listening port, the address another peer must dial to reach us.
 * libp2p keeps observed TCP addresses to itself (they stay unverified in a small mesh),
 * so we keep our own short list for the punch exchange.
 *
 * IPv6 needs no NAT: a host's global IPv6 address behind a stateful firewall is reached by
 * the same simultaneous open, at that address and the IPv6 listening port. libp2p holds
 * public interface addresses back too (unverified), so those come from our listeners.
 */
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from '@libp2p/interface'
import { MAX_PUNCH_CANDIDATES } from '../constants.ts'
import { globalIPv6 } from './candidates.ts'

function plainTcp (ma: Multiaddr): string | undefined {
  const components = ma.getComponents()
  if (components.some(c => c.name === 'p2p-circuit')) return undefined
  const ip = components[0]
  const port = components[1]
  if (ip == null || port == null || port.name !== 'tcp' || (ip.name !== 'ip4' && ip.name !== 'ip6')) return undefined
  if (ip.value == null || ip.value.startsWith('127.') || ip.value === '::1' || ip.value === '0.0.0.0') return undefined
  return `/${ip.name}/${ip.value}/tcp/${port.value}`
}

/**
 * What we offer a peer, in this order, at most MAX_PUNCH_CANDIDATES: observed mappings (newest
 * first), the addresses libp2p announces, then our listeners' global IPv6 addresses (a host
 * behind an IPv6 firewall, reached without NAT; never link-local, unique-local or the
 * documentation prefix, which libp2p already announces if they count).
 */
export function punchCandidates (observed: string[], announced: Multiaddr[], listening: Multiaddr[]): string[] {
  const plain = (list: Multiaddr[]): string[] => list.map(plainTcp).filter((a): a is string => a != null)
  const ipv6 = plain(listening).filter(a => a.startsWith('/ip6/') && globalIPv6(a.split('/')[2] ?? ''))
  return [...new Set([...observed, ...plain(announced), ...ipv6])].slice(0, MAX_PUNCH_CANDIDATES)
}

export class ObservedAddresses {
  /** Address -> when it was last observed; most recent last. */
  private readonly seen = new Map<string, number>()
  private readonly swarm: Libp2p
  private readonly listening: () => Multiaddr[]

  /** `listening`: our listeners' addresses, wildcards expanded to interface addresses (libp2p's TransportManager#getAddrs). */
  constructor (swarm: Libp2p, listening: () => Multiaddr[] = () => []) {
    this.swarm = swarm
    this.listening = listening
    swarm.addEventListener('peer:identify', evt => {
      const { observedAddr, connection } = evt.detail
      if (observedAddr == null || connection.limits != null || connection.remoteAddr.toString().includes('/p2p-circuit')) return
      const addr = plainTcp(observedAddr)
      if (addr == null) return
      this.seen.delete(addr)
      this.seen.set(addr, Date.now())
      while (this.seen.size > MAX_PUNCH_CANDIDATES) this.seen.delete(this.seen.keys().next().value as string)
    })
  }

  /** Where a peer may reach us (punchCandidates). */
  candidates (): string[] {
    return punchCandidates([...this.seen.keys()].reverse(), this.swarm.getMultiaddrs(), this.listening())
  }
}
