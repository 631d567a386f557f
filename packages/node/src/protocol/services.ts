/**
 * What a peer may reach on this node: the exposed services and networks, who may use
 * each, and how many sessions may be open. Every request is admitted or refused here,
 * on the peer's authenticated id, before anything connects to a target.
 */
import { BlockList, isIP } from 'node:net'
import { unmapped } from '../holepunch/candidates.ts'
import { accessOf, type Access } from '../access.ts'
import type { ExposeNetSpec, ExposeSpec, HostPort, NodeConfig, SessionLimits } from '../config.ts'
import type { Cidr, Transport } from '../specs.ts'
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
  access: Access
  /** undefined: every peer that can connect (`any`, or `mesh`: only key holders connect at all). */
  allow?: ReadonlySet<string>
  /** A fixed target (`--expose`), or the networks and ports peers may choose from (`--expose-net`). */
  target?: HostPort
  /** `local`: the listed networks that lie inside loopback or unspecified space, the only way to reach it. */
  net?: { networks: BlockList, local: BlockList, ports: ExposeNetSpec['ports'] }
}

export type ServiceTableConfig = Pick<NodeConfig, 'expose' | 'exposeNet' | 'allow' | 'allowAny' | 'swarmKey' | 'limits'>

/** Loopback and unspecified ("this host") addresses: a connection there reaches the node's own machine. */
const LOCAL = new BlockList()
LOCAL.addSubnet('127.0.0.0', 8, 'ipv4')
LOCAL.addSubnet('0.0.0.0', 8, 'ipv4')
LOCAL.addAddress('::1', 'ipv6')
LOCAL.addAddress('::', 'ipv6')

/** A network that names local space itself (127.0.0.0/8, ::1/128), not one that merely contains it (0.0.0.0/0, ::/0). */
function isLocalNetwork (n: Cidr): boolean {
  return n.family === 'ipv4' ? n.prefix >= 8 && LOCAL.check(n.address, 'ipv4') : n.prefix === 128 && LOCAL.check(n.address, 'ipv6')
}

export class ServiceTable {
  private readonly entries = new Map<string, Entry>()
  private readonly limits: SessionLimits
  private readonly perPeer = new Map<string, number>()
  private total = 0
  /** This node's own id: its by-name tunnels to its own services (roles/provider.ts selfRoute) pass any allow list. */
  private readonly self?: string

  constructor (config: ServiceTableConfig, self?: string) {
    this.limits = config.limits
    this.self = self
    const common = (spec: ExposeSpec | ExposeNetSpec): Pick<Entry, 'transport' | 'access' | 'allow'> => {
      // validateConfig refuses a service nobody may use; a table built around it stays closed.
      const access = accessOf(spec, config) ?? []
      return { transport: spec.transport ?? 'tcp', access, ...(Array.isArray(access) ? { allow: new Set(access) } : {}) }
    }
    for (const spec of config.expose) {
      this.entries.set(spec.name, { ...common(spec), target: spec.target })
    }
    for (const spec of config.exposeNet) {
      const networks = new BlockList()
      const local = new BlockList()
      for (const n of spec.networks) {
        networks.addSubnet(n.address, n.prefix, n.family)
        if (isLocalNetwork(n)) local.addSubnet(n.address, n.prefix, n.family)
      }
      this.entries.set(spec.name, { ...common(spec), net: { networks, local, ports: spec.ports } })
    }
  }

  /** Services open to every peer on purpose (`--allow-any`, `?allow=any`): the daemon warns about each at start. */
  get unrestricted (): string[] {
    return [...this.entries.entries()].filter(([, e]) => e.access === 'any').map(([name]) => name)
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
    // No peer can authenticate as us without our key: our id arrives only on in-process streams.
    if (entry.allow != null && !entry.allow.has(request.peer) && request.peer !== this.self) return { ok: false, reason: 'not-allowed' }

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
    // Checked as the address the socket will really reach: a mapped IPv4 address as IPv4,
    // and this host's own loopback only through a network that names it.
    // A zone id (`::1%lo`) is refused: BlockList ignores it.
    if (destination.host.includes('%')) {
      return { ok: false, reason: 'destination-not-allowed', message: `${destination.host}:${destination.port}: an IPv6 zone id is not allowed` }
    }
    // `::ffff:127.0.0.1` (in any spelling) is 127.0.0.1 on a dual-stack socket.
    const host = unmapped(destination.host).ip
    const version = isIP(host)
    const family = version === 4 ? 'ipv4' : 'ipv6'
    const local = version !== 0 && LOCAL.check(host, family)
    const inNetworks = version !== 0 && (local ? entry.net.local : entry.net.networks).check(host, family)
    if (inNetworks && entry.net.ports.some(r => destination.port >= r.from && destination.port <= r.to)) {
      return { ok: { host, port: destination.port } }
    }
    const why = local && !inNetworks
      ? 'this host\'s own addresses are reached only through a listed network that names them (e.g. 127.0.0.0/8, ::1/128)'
      : 'outside this service\'s networks and ports'
    return { ok: false, reason: 'destination-not-allowed', message: `${destination.host}:${destination.port}: ${why}` }
  }

  /** Whether `peer` may use at least one service here: a reason to answer its punch requests. */
  mayUseAny (peer: string): boolean {
    return [...this.entries.values()].some(e => e.allow == null || e.allow.has(peer))
  }
}

/** A service as `status` shows it. */
export interface ServiceDescription {
  name: string
  target: string
  /** Who may use it: `any`, `mesh` (the --swarm-key members) or the allowed peer ids. */
  access: Access
}

/**
 * The services for `status`: `127.0.0.1:22`, `127.0.0.1:53/udp`, or for a net
 * `192.168.1.0/24:22,80` (a list of networks and ports), each with who may use it.
 */
export function describeServices (config: Pick<NodeConfig, 'expose' | 'exposeNet' | 'allow' | 'allowAny' | 'swarmKey'>): ServiceDescription[] {
  const udp = (spec: { transport?: 'udp' }): string => spec.transport === 'udp' ? '/udp' : ''
  const access = (spec: ExposeSpec | ExposeNetSpec): Access => accessOf(spec, config) ?? []
  return [
    ...config.expose.map(e => ({
      name: e.name,
      target: `${e.target.host.includes(':') ? `[${e.target.host}]` : e.target.host}:${e.target.port}${udp(e)}`,
      access: access(e)
    })),
    ...config.exposeNet.map(n => ({
      name: n.name,
      target: `${n.networks.map(c => `${c.address}/${c.prefix}`).join(',')}:${n.ports.map(r => r.from === r.to ? r.from : `${r.from}-${r.to}`).join(',')}${udp(n)}`,
      access: access(n)
    }))
  ]
}
