/**
 * Our public TCP addresses as other peers see them. identify tells us, for each direct
 * connection, the address the remote observed; with transport/reuseport-tcp.ts that is the
 * NAT's mapping of our listening port, the address another peer must dial to reach us.
 * libp2p keeps observed TCP addresses to itself (they stay unverified in a small mesh),
 * so we keep our own short list for the punch exchange.
 */
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from '@libp2p/interface'
import { MAX_PUNCH_CANDIDATES } from '../constants.ts'

function plainTcp (ma: Multiaddr): string | undefined {
  const components = ma.getComponents()
  if (components.some(c => c.name === 'p2p-circuit')) return undefined
  const ip = components[0]
  const port = components[1]
  if (ip == null || port == null || port.name !== 'tcp' || (ip.name !== 'ip4' && ip.name !== 'ip6')) return undefined
  if (ip.value == null || ip.value.startsWith('127.') || ip.value === '::1' || ip.value === '0.0.0.0') return undefined
  return `/${ip.name}/${ip.value}/tcp/${port.value}`
}

export class ObservedAddresses {
  /** Address -> when it was last observed; most recent last. */
  private readonly seen = new Map<string, number>()
  private readonly swarm: Libp2p

  constructor (swarm: Libp2p) {
    this.swarm = swarm
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

  /** Where a peer may reach us: observed mappings, newest first, then our own listen addresses. */
  candidates (): string[] {
    const observed = [...this.seen.keys()].reverse()
    const own = this.swarm.getMultiaddrs().map(plainTcp).filter((a): a is string => a != null)
    return [...new Set([...observed, ...own])].slice(0, MAX_PUNCH_CANDIDATES)
  }
}
