/**
 * Whether a TCP punch round looks worth waiting for, from the two sides' candidates alone.
 *
 * A tunnel waits a short time for round 1 before it goes live on the relay, so that a punch
 * that works carries the first connection too (docs/nat-traversal.md "Waiting for the
 * punch"). It does not wait when a side's NAT looks endpoint-dependent ("symmetric"): the
 * port the bootstrap observed is then not the one that side's NAT picks for the peer, and
 * round 1 would time out. The round still runs: a full-cone or public other side lets it
 * through, and then later connections go direct.
 *
 * The sign: a side behind NAT (it offers an address of a private range, its listen address)
 * whose public IPv4 candidates (its observed mapping, a port mapping) all have ports that none
 * of its listen addresses has. Linux MASQUERADE and most home routers keep the source port
 * when they can, so a cone NAT shows its listen port again; a symmetric one (the lab's
 * `fully-random`, carrier NATs) does not. A cone NAT that does not keep ports is misjudged:
 * its first connections then take the relay, the punch still runs. A global IPv6 candidate
 * makes a side promising (no NAT there). With UDP candidates too (UDP punching), a side
 * looks hopeless only when both its TCP and its UDP candidates show the sign.
 */
import { isIPv4 } from 'node:net'
import { multiaddr } from '@multiformats/multiaddr'
import { isPrivateIp, unmapped } from './candidates.ts'

export type Prospect = { promising: true } | { promising: false, reason: string }

interface Candidate { ip: string, port: number }

function parse (addr: string): Candidate | undefined {
  try {
    const [ip, port] = multiaddr(addr).getComponents()
    if ((ip?.name !== 'ip4' && ip?.name !== 'ip6') || ip.value == null || (port?.name !== 'tcp' && port?.name !== 'udp') || port.value == null) return undefined
    return { ip: unmapped(ip.value).ip, port: Number(port.value) }
  } catch {
    return undefined
  }
}

/** Why `candidates` (one side's, as offered) look like an endpoint-dependent NAT, if they do. */
export function endpointDependentSign (candidates: string[]): string | undefined {
  const parsed = candidates.map(parse).filter((c): c is Candidate => c != null)
  if (parsed.some(c => !isIPv4(c.ip) && !isPrivateIp(c.ip))) return undefined
  const listen = parsed.filter(c => isPrivateIp(c.ip))
  const mapped = parsed.filter(c => !isPrivateIp(c.ip))
  if (listen.length === 0 || mapped.length === 0) return undefined
  const listenPorts = new Set(listen.map(c => c.port))
  if (mapped.some(c => listenPorts.has(c.port))) return undefined
  return `its NAT maps listen port ${listen[0]?.port ?? ''} to ${mapped[0]?.ip ?? ''}:${mapped[0]?.port ?? ''} (not kept: likely endpoint-dependent)`
}

/**
 * A side's sign over its candidate lists, one per transport (TCP, and UDP with UDP punching on):
 * only when every list it offers shows it (a list too short to judge does not).
 */
export function sideSign (lists: string[][]): string | undefined {
  const offered = lists.filter(l => l.length > 0)
  const signs = offered.map(endpointDependentSign)
  if (offered.length === 0 || signs.some(s => s == null)) return undefined
  return signs[0]
}

/** Whether round 1 between these candidates (per side, one list per transport) is worth waiting for. */
export function punchProspect (ours: string[][], theirs: string[][]): Prospect {
  const mine = sideSign(ours)
  if (mine != null) return { promising: false, reason: `this side: ${mine}` }
  const peer = sideSign(theirs)
  if (peer != null) return { promising: false, reason: `the peer: ${peer}` }
  return { promising: true }
}
