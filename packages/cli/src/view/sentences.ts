/**
 * Events as a person reads them on a terminal: one sentence per event, with a time prefix
 * and a level marker for warnings and errors. JSON stays the format for pipes and the
 * journal (logger.ts); this is only the terminal's view of the same records.
 *
 * `SENTENCES` has one function per event of the node's EventMap: TypeScript rejects the
 * table when an event is added without its sentence. Every string in a record may come
 * from a peer (a service name, an error message), so all of them are escaped before any
 * function sees them.
 */
import { escapeControl, type EventMap, type EventName } from '@punchgate/node'
import { formatBytes, formatDuration, formatMs } from './format.ts'

type Sentences = { [K in EventName]: (e: EventMap[K], memory: Memory) => string }

/** What one sentence may need from earlier events: the last punch time per peer. */
export class Memory {
  private readonly punched = new Map<string, number>()

  notePunch (peer: string, ms: number): void {
    // A renderer lives as long as the daemon: forget old punches rather than grow.
    if (this.punched.size >= 1024) this.punched.clear()
    this.punched.set(peer, ms)
  }

  takePunch (peer: string): number | undefined {
    const ms = this.punched.get(peer)
    this.punched.delete(peer)
    return ms
  }
}

/** `12D3...nXTN`: first 4 and last 4 characters, enough to tell peers apart in a log. */
export function shortId (peer: string): string {
  return peer.length > 12 ? `${peer.slice(0, 4)}...${peer.slice(-4)}` : peer
}

function escapeAll (value: unknown): unknown {
  if (typeof value === 'string') return escapeControl(value)
  if (Array.isArray(value)) return value.map(escapeAll)
  if (value != null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [escapeControl(k), escapeAll(v)]))
  }
  return value
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`
const via = (direct: boolean): string => direct ? 'directly' : 'through a relay'
const onPath = (path: string): string => path === 'direct' ? 'direct' : 'relayed'
const peers = (ids: string[]): string => ids.map(shortId).join(', ')
const retry = (ms: number): string => `retrying in ${formatDuration(ms)}`
/** Up to three, then how many more. */
const some = (items: string[]): string => items.length <= 3 ? items.join(', ') : `${items.slice(0, 3).join(', ')} and ${items.length - 3} more`
const tunnelName = (e: { tunnel?: string, service: string }): string => e.tunnel ?? `connect:${e.service}`
const udp = (e: { transport?: 'udp', sender?: string }): string => e.transport === 'udp' ? ` UDP session${e.sender != null ? ` from ${e.sender}` : ''}` : ' connection'
const to = (e: { destination?: string }): string => e.destination != null ? ` to ${e.destination}` : ''

const REFUSALS: Record<string, string> = {
  'not-relayed': 'it came over a direct connection',
  'not-known': 'no tunnel to that peer and no service it may use',
  'too-many-rounds': 'too many rounds this minute'
}

const METHODS: Record<string, string> = { 'nat-pmp': 'NAT-PMP', pcp: 'PCP', 'upnp-igd': 'UPnP-IGD' }
const PORTMAP_REMOVALS: Record<string, string> = {
  stopped: 'deleted at stop',
  expired: 'expired: the router stopped renewing it',
  unused: 'deleted: its listener is gone'
}

export const SENTENCES: Sentences = {
  'node.started': e => {
    // The hint that follows gives the full addresses; here the own id would only repeat.
    const addrs = e.addrs.map(a => a.endsWith(`/p2p/${e.peerId}`) ? a.slice(0, -`/p2p/${e.peerId}`.length) : a)
    return `node ${shortId(e.peerId)} started as a ${e.role} node, listening on ${some(addrs)}`
  },
  'node.bootstrap-hint': e => e.addrs.length === 0
    ? 'no address others could join with: give --listen (and --announce behind NAT)'
    : e.reachable
    ? `others join with: --bootstrap ${e.addrs[0] ?? ''}${e.addrs.length > 1 ? ` (or ${e.addrs.slice(1).join(', ')})` : ''}`
    : `only private addresses: peers on this network join with --bootstrap ${e.addrs[0] ?? ''}; ` +
      `for peers beyond it, start with --announce ${e.announce ?? '/ip4/<public ip>/tcp/<port>'}`,
  'node.stopped': e => `node ${shortId(e.peerId)} stopped`,
  'node.draining': e => `stopping: ${plural(e.connections, 'tunnel connection')} may finish within ${formatDuration(e.timeoutMs)}`,
  'node.drained': e => `drained in ${formatDuration(e.ms)}${e.cut > 0 ? `, ${plural(e.cut, 'connection')} cut` : ', nothing cut'}`,
  'phase.changed': e => `now ${e.to} (was ${e.from}, after ${e.reason})`,
  'peer.connected': e => `connected to ${shortId(e.peer)} ${via(e.direct)} (${e.addr})`,
  'peer.disconnected': e => `disconnected from ${shortId(e.peer)} (${e.direct ? 'direct' : 'relayed'}, ${e.addr})`,
  'bootstrap.dial-failed': e => `cannot reach bootstrap ${e.addr} (attempt ${e.attempt}): ${e.error}; ${retry(e.retryInMs)}`,
  'relay.reserved': e => `holding a relay slot on ${shortId(e.relay)}: reachable at ${some(e.addrs)}`,
  'relay.vouched': e => e.relays.length === 0
    ? `bootstrap ${shortId(e.bootstrap)} knows no other public node`
    : `bootstrap ${shortId(e.bootstrap)} vouches for ${plural(e.relays.length, 'public node')}: ${peers(e.relays)}`,
  'relay.lost': e => `lost the relay slot on ${shortId(e.relay)}; reserving again`,
  'relay.reserve-failed': e => `no relay slot on ${shortId(e.relay)}: ${e.error}; ${retry(e.retryInMs)}`,
  'service.unrestricted': e => `service ${e.name} is open to every peer (--allow-any or ?allow=any)`,
  'service.published': e => `service ${e.name} is published`,
  'service.publish-failed': e => `could not publish service ${e.name}: ${e.error}; trying again at the next republish`,
  'service.resolved': e => e.providers.length === 0
    ? `found no provider of ${e.name}`
    : `found ${plural(e.providers.length, 'provider')} of ${e.name}: ${peers(e.providers)}`,
  'service.resolve-failed': e => `lookup of ${e.name} failed (attempt ${e.attempt}): ${e.error}; ${retry(e.retryInMs)}`,
  'tunnel.listening': e => `tunnel ${e.tunnel} listens on ${e.bind} for ${e.service}`,
  'tunnel.state': e => `tunnel ${e.tunnel}: ${e.from} -> ${e.to}${e.peer != null ? ` (${shortId(e.peer)})` : ''}`,
  'tunnel.activated': (e, memory) => {
    const punched = e.path === 'direct' ? memory.takePunch(e.peer) : undefined
    return `tunnel ${e.tunnel} is live: ${e.path} to ${shortId(e.peer)}${punched != null ? `, punched in ${formatDuration(punched)}` : ''}`
  },
  'tunnel.deactivated': e => `tunnel ${e.tunnel} is down: ${shortId(e.peer)} was lost (${e.reason}); looking for a provider again`,
  'tunnel.connect-failed': e => `tunnel ${e.tunnel} could not reach ${shortId(e.peer)} (attempt ${e.attempt}): ${e.error}`,
  'tunnel.opened': e => e.side === 'client'
    ? `tunnel ${tunnelName(e)}:${udp(e)} opened to ${shortId(e.peer)}${to(e)} (${onPath(e.path)})`
    : `serving ${e.service}${to(e)} to ${shortId(e.peer)}:${udp(e)} opened (${onPath(e.path)})`,
  'tunnel.closed': e => {
    const what = e.side === 'client' ? `tunnel ${tunnelName(e)}:${udp(e)}` : `serving ${e.service}${to(e)} to ${shortId(e.peer)}:${udp(e)}`
    const datagrams = e.datagramsIn != null ? `, ${e.datagramsIn} datagrams in, ${e.datagramsOut ?? 0} out, ${e.dropped ?? 0} dropped` : ''
    const end = e.error != null ? ` (reset: ${e.error})` : e.closedBy != null ? ` (${e.closedBy})` : ''
    return `${what} closed after ${formatDuration(e.ms)}, ${formatBytes(e.bytesIn)} in, ${formatBytes(e.bytesOut)} out${datagrams}${end}`
  },
  'tunnel.rejected': e => {
    const why = `${e.reason}${e.message != null ? `: ${e.message}` : ''}`
    return e.side === 'client'
      ? `tunnel ${tunnelName(e)}: ${shortId(e.peer)} refused ${e.service}${to(e)} (${why})`
      : `refused ${e.service === '' ? 'a request' : e.service}${to(e)} to ${shortId(e.peer)} (${why})`
  },
  'tunnel.rejected-suppressed': e => {
    const reasons = Object.entries(e.reasons).map(([reason, n]) => `${n} ${reason}`).join(', ')
    return `refused ${e.peer === '*' ? 'other peers' : shortId(e.peer)} ${plural(e.count, 'more time')} in the last ${formatDuration(e.windowMs)} (${reasons})`
  },
  'peer.unresponsive': e => `${shortId(e.peer)} stopped answering on ${e.addr} (no ping answer in ${formatMs(e.ms)} ms): connection dropped`,
  'peer.rtt': e => `${shortId(e.peer)} answers in ${formatMs(e.rttMs)} ms (${onPath(e.path)})`,
  'control.listening': e => `control socket at ${e.path}`,
  'metrics.listening': e => `metrics at ${e.url}`,
  'metrics.exposed': e => `metrics on ${e.addr} are readable by anyone who reaches it, without authentication`,
  'holepunch.started': e => `punching to ${shortId(e.peer)} (round ${e.attempt}, ${e.role}) with ${plural(e.candidates.length, 'candidate')}`,
  'holepunch.succeeded': (e, memory) => {
    memory.notePunch(e.peer, e.ms)
    return `punched through to ${shortId(e.peer)} at ${e.addr} in ${formatDuration(e.ms)} (round ${e.attempt})`
  },
  'holepunch.failed': e => `punch to ${shortId(e.peer)} failed after ${formatDuration(e.ms)} (round ${e.attempt}): ${e.error}`,
  'holepunch.unpromising': e => `punch to ${shortId(e.peer)} (round ${e.attempt}) looks unlikely to work, serving on the relay meanwhile: ${e.reason}`,
  'holepunch.birthday': e => e.role === 'fan-out' ? `punch to ${shortId(e.peer)} (round ${e.attempt}): our NAT looks symmetric, fanning out sockets towards ${e.target}` : `punch to ${shortId(e.peer)} (round ${e.attempt}): the peer's NAT looks symmetric, probing random ports of ${e.target.split(':')[0] ?? ''}`,
  'holepunch.refused': e => `refused a punch request from ${shortId(e.peer)}: ${REFUSALS[e.reason] ?? e.reason}`,
  'splice.opened': e => `spliced path to ${shortId(e.peer)} through ${shortId(e.relay)} in ${formatDuration(e.ms)}`,
  'splice.failed': e => `no spliced path to ${shortId(e.peer)} through ${shortId(e.relay)} after ${formatDuration(e.ms)}: ${e.error}`,
  'splice.unavailable': e => `not splicing: cannot listen on ${e.addr}: ${e.error}`,
  'provider.untrusted': e => `skipped ${shortId(e.peer)}, an untrusted provider of ${e.service}${e.tunnel != null ? ` (tunnel ${e.tunnel})` : ''}`,
  'provider.pinned': e => `${shortId(e.peer)} is now the only trusted provider of ${e.service}${e.file != null ? ` (pinned in ${e.file})` : ''}`,
  'provider.pin-failed': e => `could not pin ${shortId(e.peer)} for ${e.service} in ${e.file}: ${e.error}; the pin holds until the node stops`,
  'tunnel.no-trusted-provider': e => `tunnel ${e.tunnel} stays down: ${e.reason} (untrusted: ${peers(e.untrusted)})`,
  'reach.probed': e => `reach probe for ${shortId(e.peer)} at ${e.ip}: ${e.reachable.length > 0 ? `reachable on ${e.reachable.join(', ')}` : 'not reachable'}${e.reachable.length > 0 && e.unreachable.length > 0 ? `, not on ${e.unreachable.join(', ')}` : ''}`,
  'role.changed': e => `now a ${e.to} node: ${e.reason}`,
  'provider.refused': e => `refused ${plural(e.refused, 'provider record')} over the ${e.reason === 'peer-cap' ? 'per-peer' : 'total'} cap (last from ${shortId(e.peer)})`,
  'portmap.mapped': e => `${e.renewed ? 'renewed' : 'mapped'} ${e.protocol.toUpperCase()} ${e.external} to ${e.internal} on router ${e.gateway} (${METHODS[e.method] ?? e.method}, ${formatDuration(e.lifetimeS * 1000)})`,
  'portmap.failed': e => `no port mapping${e.gateway != null ? ` on router ${e.gateway}` : ''}: ${e.error}`,
  'portmap.removed': e => `port mapping ${e.protocol.toUpperCase()} ${e.external} ${PORTMAP_REMOVALS[e.reason] ?? e.reason}${e.error != null ? ` (router did not confirm: ${e.error})` : ''}`
}

const MARKERS: Record<number, string> = { 10: 'TRACE ', 20: 'DEBUG ', 40: 'WARN ', 50: 'ERROR ', 60: 'FATAL ' }

/** `10:00:01.120`, in local time like a terminal's clock. */
function clock (time: unknown): string {
  const date = new Date(typeof time === 'string' || typeof time === 'number' ? time : Date.now())
  const pad = (n: number, width = 2): string => String(n).padStart(width, '0')
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`
}

function isEventName (name: unknown): name is EventName {
  return typeof name === 'string' && Object.hasOwn(SENTENCES, name)
}

/** The sentence for one event record (`{ event, ...fields }`), without time or level. */
export function sentence (record: Record<string, unknown>, memory = new Memory()): string {
  const { event, level: _level, time: _time, ...fields } = escapeAll(record) as Record<string, unknown>
  if (!isEventName(event)) {
    // Not a Punchgate event (or a newer one): its name and fields, still one escaped line.
    const rest = Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ')
    return `${typeof event === 'string' ? event : 'log'}${rest !== '' ? ` ${rest}` : ''}`
  }
  const render = SENTENCES[event] as (e: unknown, memory: Memory) => string
  return render(fields, memory)
}

/** One terminal line for a pino record: time, a marker for anything but info, the sentence. */
export function renderLine (record: Record<string, unknown>, memory: Memory): string {
  const marker = typeof record.level === 'number' ? MARKERS[record.level] ?? '' : ''
  return `${clock(record.time)} ${marker}${sentence(record, memory)}\n`
}
