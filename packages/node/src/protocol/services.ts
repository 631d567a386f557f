/**
 * What a peer may reach on this node: the exposed services and networks, who may use
 * each, and how many sessions may be open. Every request is admitted or refused here,
 * on the peer's authenticated id, before anything connects to a target.
 */
import { BlockList, isIP } from 'node:net'
import type { ExposeNetSpec, ExposeSpec, HostPort, NodeConfig, SessionLimits } from '../config.ts'
import type { Transport } from '../specs.ts'
import type { RejectReason } from './handshake.ts'

export interface SessionRequest {
  /** The remote peer's id, as authenticated by the connection's encryption handshake. */
  peer: string
  service: string
  transport: Transport
  destination?: HostPort
}

export type Admission =
  | { ok: true, target: HostPort, release: () => void }
  | { ok: false, reason: RejectReason, message?: string }

interface Entry {
  transport: Transport
  /** undefined: open to every peer. */
  allow?: ReadonlySet<string>
  /** A fixed target (`--expose`), or the networks and ports peers may choose from (`--expose-net`). */
  target?: HostPort
  net?: { networks: BlockList, ports: ExposeNetSpec['ports'] }
}

export type ServiceTableConfig = Pick<NodeConfig, 'expose' | 'exposeNet' | 'allow' | 'limits'>

export class ServiceTable {
  private readonly entries = new Map<string, Entry>()
  private readonly limits: SessionLimits
  private readonly perPeer = new Map<string, number>()
  private total = 0

  constructor (config: ServiceTableConfig) {
    this.limits = config.limits
    const nodeAllow = config.allow.length > 0 ? new Set(config.allow) : undefined
    const allowOf = (spec: ExposeSpec | ExposeNetSpec): ReadonlySet<string> | undefined =>
      spec.allow != null ? new Set(spec.allow) : nodeAllow
    for (const spec of config.expose) {
      this.entries.set(spec.name, { transport: spec.transport ?? 'tcp', allow: allowOf(spec), target: spec.target })
    }
    for (const spec of config.exposeNet) {
      const networks = new BlockList()
      for (const n of spec.networks) networks.addSubnet(n.address, n.prefix, n.family)
      this.entries.set(spec.name, { transport: spec.transport ?? 'tcp', allow: allowOf(spec), net: { networks, ports: spec.ports } })
    }
  }

  /** Services every peer may use: the daemon warns about each at start. */
  get unrestricted (): string[] {
    return [...this.entries.entries()].filter(([, e]) => e.allow == null).map(([name]) => name)
  }

  /** Sessions open right now, all peers together. */
  get sessions (): number {
    return this.total
  }

  admit (request: SessionRequest): Admission {
    const entry = this.entries.get(request.service)
    if (entry == null) return { ok: false, reason: 'unknown-service' }
    if (entry.transport !== request.transport) {
      return { ok: false, reason: 'wrong-transport', message: `service is ${entry.transport}` }
    }
    if (entry.allow != null && !entry.allow.has(request.peer)) return { ok: false, reason: 'not-allowed' }

    const target = this.targetOf(entry, request.destination)
    if ('reason' in target) return target

    const peerCount = this.perPeer.get(request.peer) ?? 0
    if ((this.limits.maxSessions != null && this.total >= this.limits.maxSessions) ||
        (this.limits.maxSessionsPerPeer != null && peerCount >= this.limits.maxSessionsPerPeer)) {
      return { ok: false, reason: 'too-many-sessions' }
    }
    this.total++
    this.perPeer.set(request.peer, peerCount + 1)
    let released = false
    const release = (): void => {
      if (released) return
      released = true
      this.total--
      const left = (this.perPeer.get(request.peer) ?? 1) - 1
      if (left > 0) this.perPeer.set(request.peer, left)
      else this.perPeer.delete(request.peer)
    }
    return { ok: true, target: target.ok, release }
  }

  private targetOf (entry: Entry, destination?: HostPort): { ok: HostPort } | { ok: false, reason: RejectReason, message: string } {
    if (entry.target != null) {
      return destination == null
        ? { ok: entry.target }
        : { ok: false, reason: 'bad-request', message: 'this service has a fixed target; do not send a destination' }
    }
    if (entry.net == null) throw new Error('service entry with neither target nor networks')
    if (destination == null) {
      return { ok: false, reason: 'bad-request', message: 'this service needs a destination (HOST:PORT)' }
    }
    const family = isIP(destination.host)
    const inside = family !== 0 &&
      entry.net.networks.check(destination.host, family === 4 ? 'ipv4' : 'ipv6') &&
      entry.net.ports.some(r => destination.port >= r.from && destination.port <= r.to)
    return inside
      ? { ok: destination }
      : { ok: false, reason: 'destination-not-allowed', message: `${destination.host}:${destination.port} is outside this service's networks and ports` }
  }

  /** Whether `peer` may use at least one service here: a reason to answer its punch requests. */
  mayUseAny (peer: string): boolean {
    return [...this.entries.values()].some(e => e.allow == null || e.allow.has(peer))
  }
}

/**
 * The services for `status`: `127.0.0.1:22`, `127.0.0.1:53/udp`, or for a net
 * `192.168.1.0/24:22,80` (a list of networks and ports).
 */
export function describeServices (config: Pick<NodeConfig, 'expose' | 'exposeNet'>): Array<{ name: string, target: string }> {
  const udp = (spec: { transport?: 'udp' }): string => spec.transport === 'udp' ? '/udp' : ''
  return [
    ...config.expose.map(e => ({
      name: e.name,
      target: `${e.target.host.includes(':') ? `[${e.target.host}]` : e.target.host}:${e.target.port}${udp(e)}`
    })),
    ...config.exposeNet.map(n => ({
      name: n.name,
      target: `${n.networks.map(c => `${c.address}/${c.prefix}`).join(',')}:${n.ports.map(r => r.from === r.to ? r.from : `${r.from}-${r.to}`).join(',')}${udp(n)}`
    }))
  ]
}
