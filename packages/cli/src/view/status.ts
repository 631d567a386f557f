/** `punchgate status` as text: the service manager's view, then the live daemon's. */
import type { Access, DaemonStatus, NodeStatus } from '@punchgate/node'

type PortMappings = NonNullable<NodeStatus['portMappings']>

const METHOD_NAMES: Record<PortMappings[number]['method'], string> = { 'nat-pmp': 'NAT-PMP', pcp: 'PCP', 'upnp-igd': 'UPnP-IGD' }
import type { ServiceState } from '../service/manager.ts'
import { fields, formatBytes, formatDuration, formatMs, lines, shortPeer, table, type Lines } from './format.ts'

export interface StatusReport {
  control: string
  service: ServiceState
  /** Absent when no daemon answers on the control socket. */
  daemon?: DaemonStatus
}

function serviceLine (service: ServiceState): string {
  return `${service.manager}: ${service.state}${service.detail != null ? ` (${service.detail})` : ''}`
}

/** `PEER:svc@bind` with the peer id shortened; by-name specs as they are. */
function shortTunnel (spec: string): string {
  const colon = spec.indexOf(':')
  const at = spec.lastIndexOf('@')
  return colon > 0 && colon < at ? `${shortPeer(spec.slice(0, colon))}${spec.slice(colon)}` : spec
}

/** Who may use a service: `any`, `mesh`, or the peer ids shortened (a long list counted). */
function access (value: Access): string {
  if (!Array.isArray(value)) return value
  const ids = value.map(shortPeer)
  return ids.length <= 3 ? ids.join(', ') : `${ids.slice(0, 2).join(', ')} +${ids.length - 2} more`
}

function list (values: string[]): Lines {
  return lines(values.length === 0 ? ['-'] : values)
}

function reserved (addrs: string[]): Lines {
  const [first, ...rest] = list(addrs).lines
  return lines([`reserved ${first ?? '-'}`, ...rest])
}

/** `TCP 203.0.113.9:4001 -> 192.168.1.20:4001 (UPnP-IGD on 192.168.1.1, lease ends in 31m)`, one per line. */
function portMappings (mappings: PortMappings, now: Date): Lines {
  if (mappings.length === 0) return lines(['none (no router answered, or nothing to map)'])
  return lines(mappings.map(m => `${m.protocol.toUpperCase()} ${m.external} -> ${m.internal} (${METHOD_NAMES[m.method]} on ${m.gateway}, ` +
    `lease ends in ${formatDuration(Math.max(0, Date.parse(m.expiresAt) - now.getTime()))})`))
}

export function renderStatus (report: StatusReport, now: Date = new Date()): string {
  const { daemon } = report
  if (daemon == null) {
    return fields([
      ['service', serviceLine(report.service)],
      ['daemon', `not running (nothing answers on ${report.control})`]
    ])
  }
  const s = daemon.status
  const splice = s.splice != null ? `; splicing on ${s.splice.addr}: ${s.splice.active} pairs, ${formatBytes(s.splice.copied)} copied` : ''
  const relay = s.role === 'public'
    ? `serving (public node)${splice}`
    : s.relay.state === 'reserved' ? reserved(s.relay.addrs) : s.relay.state
  let out = fields([
    ['service', serviceLine(report.service)],
    ['daemon', `running, up ${formatDuration(now.getTime() - Date.parse(s.startedAt))} (control ${report.control})`],
    ['peer id', s.peerId],
    ['role', `${s.role}${s.roleReason != null ? ` (${s.roleReason})` : ''}, phase ${s.phase}`],
    ['listening', list(s.listenAddrs)],
    ['announced', list(s.announcedAddrs)],
    ['observed', list(s.observedAddrs)],
    ['relay', relay],
    ...(s.portMappings != null ? [['mapped', portMappings(s.portMappings, now)] as [string, Lines]] : []),
    ...(s.metrics != null ? [['metrics', s.metrics] as [string, string]] : [])
  ])

  out += `\npeers (${s.peers.length})\n`
  out += table(['PEER', 'PATH', 'RTT', 'ADDRESS'], s.peers.map(p => [
    p.peer, p.path, p.rttMs != null ? `${formatMs(p.rttMs)} ms` : '-', p.addrs[0] ?? '-'
  ]))

  out += `\nexposed services (${s.services.length})\n`
  out += table(['NAME', 'TARGET', 'ACCESS'], s.services.map(e => [e.name, e.target, access(e.access)]))

  out += `\ntunnels (${s.tunnels.length})\n`
  out += table(['TUNNEL', 'BIND', 'STATE', 'PEER', 'OPEN', 'TOTAL', 'REJECTED', 'IN', 'OUT'], s.tunnels.map(t => [
    shortTunnel(t.tunnel),
    t.bind,
    t.status,
    t.peer != null ? shortPeer(t.peer) : '-',
    String(t.connections),
    String(t.opened),
    String(t.rejected),
    formatBytes(t.bytesIn),
    formatBytes(t.bytesOut)
  ]))

  const distrusted = s.tunnels.filter(t => (t.untrusted ?? []).length > 0 || t.reason != null)
  if (distrusted.length > 0) {
    out += '\nuntrusted providers (skipped; docs/access-control.md)\n'
    out += table(['TUNNEL', 'UNTRUSTED', 'WHY DOWN'], distrusted.map(t => [
      shortTunnel(t.tunnel), (t.untrusted ?? []).map(shortPeer).join(', ') || '-', t.reason ?? '-'
    ]))
  }

  const c = daemon.connects
  out += `\nconnect sessions: ${c.open} open, ${c.opened} total, ${c.failed} failed, ` +
    `in ${formatBytes(c.bytesIn)}, out ${formatBytes(c.bytesOut)}\n`
  return out
}
