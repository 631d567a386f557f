/**
 * What a reach probe's answer means for the role (pure; roles/reachability.ts acts on it,
 * `punchgate netcheck` reports it). A node is public when a public node reached one of its
 * TCP listen ports at an address the node holds itself (on an interface) or announces
 * (`--announce`). Reachable only at a NAT's address is not enough: a full-cone NAT lets
 * anyone in through the mapping our own outbound traffic opened, for as long as that traffic
 * lasts, and a home router's port forward is the operator's to offer; either becomes public
 * with `--role public` (docs/nat-traversal.md, "Roles"). Reached at a loopback address
 * (a bootstrap on the same host) says nothing about anyone else: not public either.
 */
import { networkInterfaces } from 'node:os'
import type { ReachAnswer } from './wire.ts'

export interface ReachVerdict {
  /** Public: reachable at an address of ours. */
  reachable: boolean
  /** In words, for `role.changed` and status. */
  reason: string
  /** `/ip4/IP/tcp/PORT` for each port reached at an address of ours (empty when not reachable). */
  addrs: string[]
}

/** The IP addresses this host holds on its interfaces. */
export function interfaceIps (interfaces = networkInterfaces): string[] {
  return Object.values(interfaces()).flatMap(list => (list ?? []).map(i => i.address))
}

/** The IP addresses named in `--announce` multiaddrs (`/ip4/IP/...`, `/ip6/IP/...`). */
export function announcedIps (announce: string[]): string[] {
  return announce.map(addr => /^\/ip[46]\/([^/]+)\//.exec(addr)?.[1]).filter((ip): ip is string => ip != null)
}

function isLoopback (ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1' || ip.startsWith('::ffff:127.')
}

/**
 * `answer` from the public node `by` (a short name for it), judged against the addresses
 * this node holds or announces (`ours`). `loopback`: tests on 127.0.0.1 only, a loopback
 * address counts like any other.
 */
export function judgeReach (answer: ReachAnswer, ours: string[], by: string, options: { loopback?: boolean } = {}): ReachVerdict {
  const at = (ports: number[]): string => ports.map(port => `${answer.ip.includes(':') ? `[${answer.ip}]` : answer.ip}:${port}`).join(', ')
  if (answer.reachable.length === 0) {
    return { reachable: false, reason: `${by} could not connect to ${at(answer.unreachable)}`, addrs: [] }
  }
  if (isLoopback(answer.ip) && options.loopback !== true) {
    return { reachable: false, reason: `reached only at ${at(answer.reachable)}, a loopback address: ${by} runs on this host`, addrs: [] }
  }
  if (!ours.includes(answer.ip)) {
    return {
      reachable: false,
      reason: `reachable at ${at(answer.reachable)} through a NAT (not an address of this host): --role public or --announce to serve from there`,
      addrs: []
    }
  }
  const family = answer.ip.includes(':') ? 6 : 4
  return {
    reachable: true,
    reason: `${by} reached ${at(answer.reachable)}`,
    addrs: answer.reachable.map(port => `/ip${family}/${answer.ip}/tcp/${port}`)
  }
}
