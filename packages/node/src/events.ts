/**
 * Every structured event the node emits, with its fields, in one place
 * (documented in docs/events.md). Each is logged as `{ event: name, ...fields }`
 * and dispatched on the node's `events` emitter so tests and embedders can await it.
 */
import { EventEmitter } from 'node:events'
import type { Logger } from './logger.ts'

export type Path = 'direct' | 'relay'
export type Side = 'client' | 'server'
/** initiator: the side whose tunnel wants the direct path; responder: the side it punches to. */
export type PunchRole = 'initiator' | 'responder'
/** Why a punch request was reset unread: it came over a direct connection, from a peer we have no reason to meet, or past its rounds per minute. */
export type PunchRefusal = 'not-relayed' | 'not-known' | 'too-many-rounds'

/** A UDP session (one local sender) logs as a tunnel with these fields. */
export type UdpCloser = 'idle' | 'evicted' | 'shutdown'

export type UdpFields = {
  transport?: 'udp'
  /** Client side: the local sender, `address:port`. */
  sender?: string
}

export type UdpCounts = {
  datagramsIn: number
  datagramsOut: number
  /** Datagrams dropped in this session (congested or closing stream). */
  dropped: number
}

export interface EventMap {
  'node.started': { peerId: string, addrs: string[], role: 'public' | 'private' }
  /** A public node, at start: the `--bootstrap` values others pass to join it (bootstrap-hint.ts). */
  'node.bootstrap-hint': { addrs: string[], reachable: boolean, announce?: string }
  'node.stopped': { peerId: string }
  'node.draining': { connections: number, timeoutMs: number }
  'node.drained': { ms: number, cut: number }
  'phase.changed': { from: string, to: string, reason: string }
  /** The reach probe moved the node between roles (`--role auto` with a bootstrap); `reason` in words. */
  'role.changed': { from: 'public' | 'private', to: 'public' | 'private', reason: string }
  'peer.connected': { peer: string, direct: boolean, addr: string }
  'peer.disconnected': { peer: string, direct: boolean, addr: string }
  'bootstrap.dial-failed': { addr: string, attempt: number, retryInMs: number, error: string }
  /** A private node holds a slot on `relay` (its address, ending in its /p2p/ id); `addrs`: our circuit addresses through it. */
  'relay.reserved': { relay: string, addrs: string[] }
  /** A bootstrap (peer id) vouched for other public nodes (`/punchgate/relays/1.0.0`): relays to reserve on next. */
  'relay.vouched': { bootstrap: string, relays: string[] }
  'relay.lost': { relay: string }
  'relay.reserve-failed': { relay: string, retryInMs: number, error: string }
  'service.unrestricted': { name: string }
  'service.published': { name: string }
  'service.publish-failed': { name: string, error: string }
  'service.resolved': { name: string, providers: string[] }
  'service.resolve-failed': { name: string, attempt: number, retryInMs: number, error: string }
  'tunnel.listening': { tunnel: string, service: string, bind: string }
  'tunnel.state': { tunnel: string, service: string, from: string, to: string, peer?: string }
  'tunnel.activated': { tunnel: string, peer: string, service: string, path: Path }
  'tunnel.deactivated': { tunnel: string, peer: string, service: string, reason: string }
  'tunnel.connect-failed': { tunnel: string, peer: string, service: string, attempt: number, error: string }
  'tunnel.opened': { side: Side, peer: string, service: string, path: Path, tunnel?: string, destination?: string } & UdpFields
  'tunnel.closed': {
    side: Side, peer: string, service: string, bytesIn: number, bytesOut: number, ms: number, error?: string, tunnel?: string, destination?: string
    /** UDP: the daemon ended the session itself (idle timeout, evicted for a newer sender, shutdown). */
    closedBy?: UdpCloser
  } & UdpFields & Partial<UdpCounts>
  'tunnel.rejected': { side: Side, peer: string, service: string, reason: string, tunnel?: string, destination?: string, message?: string } & UdpFields
  /** Server-side rejections of `peer` dispatched but not logged in the last window (log-limit.ts); `peer` "*": peers beyond the tracked cap. */
  'tunnel.rejected-suppressed': { side: Side, peer: string, count: number, reasons: Record<string, number>, windowMs: number }
  'peer.rtt': { peer: string, rttMs: number, path: Path }
  'control.listening': { path: string }
  'metrics.listening': { url: string }
  'holepunch.started': { peer: string, attempt: number, method: string, role: PunchRole, candidates: string[] }
  'holepunch.succeeded': { peer: string, attempt: number, method: string, role: PunchRole, ms: number, addr: string }
  'holepunch.failed': { peer: string, attempt: number, method: string, role: PunchRole, ms: number, error: string }
  /** Round `attempt` looks likely to fail (a side's NAT looks endpoint-dependent): the tunnel goes live on the relay without waiting for it. */
  /** A watched connection left a liveness ping unanswered (liveness.ts) and was aborted as dead. */
  'peer.unresponsive': { peer: string, addr: string, ms: number }
  'holepunch.unpromising': { peer: string, attempt: number, reason: string }
  /** The round runs the birthday method too (holepunch/hard-nat.ts): we fan out sockets towards `target`, or spray random ports of its IP. */
  'holepunch.birthday': { peer: string, attempt: number, role: 'fan-out' | 'spray', target: string }
  /** Logged a few per peer per minute: later refusals in the minute are not logged. */
  'holepunch.refused': { peer: string, reason: PunchRefusal }
  /** A relayed connection got a spliced twin: bytes through `relay` that it only copies. */
  'splice.opened': { peer: string, relay: string, addr: string, ms: number }
  'splice.failed': { peer: string, relay: string, ms: number, error: string }
  /** A public node could not listen for splices on its default port: it relays over circuits only. */
  'splice.unavailable': { addr: string, error: string }
  /** A provider of a by-name tunnel's service that the tunnel does not trust: skipped (once per tunnel and peer). `tunnel` is absent for `connect`. */
  'provider.untrusted': { tunnel?: string, service: string, peer: string }
  /** Trust on first use: the provider a tunnel (or `connect`) first went live with is now the only one trusted for the service. */
  'provider.pinned': { tunnel?: string, service: string, peer: string, file?: string }
  /** The pin could not be written to the known-providers file: it holds in memory until the node stops. */
  'provider.pin-failed': { service: string, peer: string, file: string, error: string }
  /** Every provider found is untrusted: the tunnel stays down and retries (once per stretch of such lookups). */
  'tunnel.no-trusted-provider': { tunnel: string, service: string, untrusted: string[], reason: string }
  /** A public node refused provider records over its caps; `refused`: how many since the last such event (one a minute at most). */
  'provider.refused': { peer: string, reason: 'peer-cap' | 'total-cap', refused: number }
  /** A public node answered a reach probe (reachability/): it dialed `peer` back at `ip` on the ports it asked for. */
  'reach.probed': { peer: string, ip: string, reachable: number[], unreachable: number[] }
  /** The router forwards `external` to our listen port `internal` (new lease, or a renewal when `renewed`). */
  'portmap.mapped': { protocol: 'tcp' | 'udp', internal: string, external: string, method: 'nat-pmp' | 'pcp' | 'upnp-igd', gateway: string, lifetimeS: number, renewed: boolean }
  /** No mapping this time: no gateway, nothing to map, or the router did not answer or refused (tried again later). */
  'portmap.failed': { gateway?: string, error: string }
  /** A mapping is gone: deleted at stop (`error` if the router did not confirm), its lease ran out unrenewed, or its listener closed. */
  'portmap.removed': { protocol: 'tcp' | 'udp', internal: string, external: string, method: 'nat-pmp' | 'pcp' | 'upnp-igd', reason: 'stopped' | 'expired' | 'unused', error?: string }
  /** `--metrics` listens beyond loopback: whoever reaches it reads peer ids and traffic figures. */
  'metrics.exposed': { addr: string }
}

export type EventName = keyof EventMap

const WARN_EVENTS: ReadonlySet<EventName> = new Set<EventName>([
  'bootstrap.dial-failed', 'relay.lost', 'relay.reserve-failed', 'service.unrestricted', 'service.publish-failed', 'service.resolve-failed',
  'tunnel.connect-failed', 'tunnel.rejected', 'tunnel.deactivated', 'holepunch.failed', 'splice.failed', 'splice.unavailable',
  'provider.untrusted', 'provider.pin-failed', 'tunnel.no-trusted-provider',
  'provider.refused', 'metrics.exposed',
  'holepunch.refused', 'peer.unresponsive',
  'tunnel.rejected-suppressed'
])

const DEBUG_EVENTS: ReadonlySet<EventName> = new Set<EventName>(['tunnel.opened', 'reach.probed', 'portmap.failed'])

/** A typed EventEmitter: `on('tunnel.activated', e => e.path)`. */
export class NodeEvents extends EventEmitter {
  private readonly logger: Logger

  constructor (logger: Logger) {
    super()
    this.logger = logger
  }

  /** `log: false` dispatches without a log line: for lines a rate limit (log-limit.ts) holds back. */
  emitEvent<K extends EventName>(name: K, fields: EventMap[K], options: { log?: boolean } = {}): void {
    if (options.log !== false) {
      const record = { event: name, ...fields }
      if (WARN_EVENTS.has(name)) this.logger.warn(record)
      else if (DEBUG_EVENTS.has(name)) this.logger.debug(record)
      else this.logger.info(record)
    }
    this.emit(name, fields)
  }

  onEvent<K extends EventName>(name: K, listener: (fields: EventMap[K]) => void): this {
    return this.on(name, listener)
  }
}

/** Resolves with the first event `name` whose fields satisfy `match`; rejects on abort. */
export async function waitForEvent<K extends EventName> (
  events: NodeEvents, name: K, match: (fields: EventMap[K]) => boolean = () => true, signal?: AbortSignal
): Promise<EventMap[K]> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      events.off(name, listener)
      reject(signal?.reason ?? new Error('aborted'))
    }
    const listener = (fields: EventMap[K]): void => {
      if (!match(fields)) return
      events.off(name, listener)
      signal?.removeEventListener('abort', onAbort)
      resolve(fields)
    }
    if (signal?.aborted === true) { onAbort(); return }
    signal?.addEventListener('abort', onAbort, { once: true })
    events.on(name, listener)
  })
}
