/** `punchgate netcheck` as text: what public nodes saw, what that means, and which ways to a direct connection work. */
import type { Mapping, MappingVerdict, NetcheckReport } from '@punchgate/node'
import { fields, lines, shortPeer, table } from './format.ts'

const MAPPING_WORDS: Record<Mapping, string> = {
  none: 'no NAT',
  'endpoint-independent': 'endpoint-independent ("cone" NAT)',
  'endpoint-dependent': 'endpoint-dependent ("symmetric" NAT)',
  unknown: 'not measured'
}

function mapping (verdict: MappingVerdict & { localPort?: number }): string {
  const port = verdict.localPort != null ? `, local port ${verdict.localPort}` : ''
  return `${MAPPING_WORDS[verdict.mapping]}${port}: ${verdict.reason}`
}

function router (report: NetcheckReport): string {
  const p = report.portMapping
  if (!p.asked) return 'not asked (--no-port-mapping)'
  if (p.gateway == null) return 'no IPv4 default gateway found'
  const found = [p.natPmp ? 'NAT-PMP' : '', p.pcp ? 'PCP' : '', p.upnpIgd ? 'UPnP-IGD' : ''].filter(Boolean)
  return `router ${p.gateway} answers ${found.length > 0 ? found.join(', ') : 'none of NAT-PMP, PCP and UPnP-IGD'}`
}

export function renderNetcheck (report: NetcheckReport): string {
  const seen = table(['via', 'seen as', 'by public node'], report.observations.map(o => [
    o.transport === 'tcp' ? 'TCP' : 'QUIC',
    o.mapped ?? `- (${o.error ?? 'no answer'})`,
    `${o.observer} (${shortPeer(o.peer)})`
  ]))
  return 'Where public nodes saw this host:\n' + seen + '\n' + fields([
    ['TCP mapping', mapping(report.tcp)],
    ['UDP mapping', mapping(report.quic)],
    ['Port mapping', router(report)],
    ['Global IPv6', lines(report.ipv6.length > 0 ? report.ipv6 : ['none'])],
    ['Role', `${report.role.role}: ${report.role.reason}`]
  ]) + '\nWays to a connection from here:\n' + table(['works', 'method', 'why'], report.punch.map(p => [p.works ? 'yes' : 'no', p.method, p.reason]))
}
