/** `punchgate analyze` as text: one section per report, tables in the terminal's width class. */
import { formatBytes, formatDuration, formatMs, shortPeer, table } from '../view/format.ts'
import type { Analysis, Connections, PeerLatency, Phases, Summary, Tunnels } from './reports.ts'

function clock (t: number): string {
  return new Date(t).toISOString().replace('T', ' ').replace('Z', '')
}

function counts (record: Record<string, number>): string {
  const entries = Object.entries(record)
  return entries.length === 0 ? '-' : entries.map(([k, v]) => `${k} ${v}`).join(', ')
}

function renderSummary (s: Summary): string {
  let out = '== summary\n'
  out += s.from != null && s.to != null
    ? `span: ${clock(s.from)} .. ${clock(s.to)} (${formatDuration(s.durationMs)})\n`
    : 'span: no events\n'
  out += table(['SOURCE', 'LINES', 'EVENTS', 'SKIPPED'], s.sources.map(x => [x.source, String(x.lines), String(x.records), String(x.skipped)]))
  out += '\nnodes\n'
  out += table(['NODE', 'ROLE', 'STARTS', 'STOPS', 'EVENTS', 'WARN', 'ERROR', 'LOGGED FOR'], s.nodes.map(n => [
    shortPeer(n.node), n.role ?? '-', String(n.started), String(n.stopped), String(n.records), String(n.warnings), String(n.errors),
    formatDuration(n.to - n.from)
  ]))
  out += '\nevents\n'
  out += table(['EVENT', 'COUNT'], Object.entries(s.events).map(([name, n]) => [name, String(n)]))
  return out
}

function renderConnections (c: Connections): string {
  let out = '== connections\n'
  out += table(['NODE', 'PEER', 'CONNECTS', 'DIRECT', 'RELAYED', 'CLOSED', 'OPEN AT END', 'SESSION MIN/MEAN/MAX'], c.peers.map(p => [
    shortPeer(p.node),
    `${shortPeer(p.peer)}${p.known ? '' : ' (not in logs)'}`,
    String(p.connects),
    String(p.direct),
    String(p.relayed),
    String(p.disconnects),
    String(p.openAtEnd),
    p.sessions != null
      ? `${formatDuration(p.sessions.min)} / ${formatDuration(p.sessions.mean)} / ${formatDuration(p.sessions.max)}`
      : '-'
  ]))
  out += '\nchurn\n'
  out += table(['NODE', 'CONNECTS', 'DISCONNECTS', 'PER MINUTE'], c.churn.map(x => [
    shortPeer(x.node), String(x.connects), String(x.disconnects), x.perMinute.toFixed(1)
  ]))
  out += '\nhole punching\n'
  out += table(['NODE', 'PEER', 'ROUNDS', 'SUCCEEDED', 'FAILED', 'TIME TO DIRECT (MEAN)'], c.holepunch.map(x => [
    shortPeer(x.node), shortPeer(x.peer), String(x.started), String(x.succeeded), String(x.failed),
    x.ms != null ? formatDuration(x.ms.mean) : '-'
  ]))
  return out
}

function renderLatency (l: PeerLatency[]): string {
  let out = '== latency (peer.rtt, ms)\n'
  if (l.length === 0) return `${out}  (no peer.rtt events: the daemon logs them every --rtt-interval seconds)\n`
  out += table(['NODE', 'PEER', 'PATH', 'SAMPLES', 'MIN', 'MEAN', 'P95', 'P99', 'MAX'], l.map(x => [
    shortPeer(x.node), shortPeer(x.peer), x.paths.join('+'), String(x.count),
    formatMs(x.min), formatMs(x.mean), formatMs(x.p95), formatMs(x.p99), formatMs(x.max)
  ]))
  return out
}

function renderTunnels (t: Tunnels): string {
  let out = '== tunnels\n'
  out += table(['NODE', 'SIDE', 'TUNNEL / SERVICE', 'CONNECTIONS', 'RESET', 'REJECTED', 'IN', 'OUT', 'MEAN TIME'], t.traffic.map(x => [
    shortPeer(x.node), x.side, x.tunnel, String(x.opened), String(x.failed), counts(x.rejected),
    formatBytes(x.bytesIn), formatBytes(x.bytesOut),
    x.durations != null ? formatDuration(x.durations.mean) : '-'
  ]))
  out += '\nlifecycle\n'
  out += table(['NODE', 'TUNNEL', 'ACTIVATED', 'DEACTIVATED', 'DIAL FAILURES'], t.lifecycle.map(x => [
    shortPeer(x.node), x.tunnel, counts(x.activations), String(x.deactivations), String(x.connectFailures)
  ]))
  return out
}

function renderPhases (p: Phases): string {
  let out = '== phases\n'
  out += table(['TIME', 'NODE', 'FROM', 'TO', 'REASON'], p.timeline.map(x => [clock(x.t), shortPeer(x.node), x.from, x.to, x.reason]))
  out += '\ntime per phase\n'
  out += table(['NODE', 'JOINED IN', 'JOINING', 'READY', 'SHUTTING DOWN'], p.time.map(x => [
    shortPeer(x.node),
    x.joinMs != null ? formatDuration(x.joinMs) : '-',
    formatDuration(x.ms.joining ?? 0),
    formatDuration(x.ms.ready ?? 0),
    formatDuration(x.ms['shutting-down'] ?? 0)
  ]))
  out += `\nanomalies (${p.anomalies.length})\n`
  out += table(['TIME', 'NODE', 'KIND', 'DETAIL'], p.anomalies.map(a => [clock(a.t), shortPeer(a.node), a.kind, a.detail]))
  return out
}

export function renderAnalysis (a: Analysis): string {
  const sections: string[] = []
  if (a.summary != null) sections.push(renderSummary(a.summary))
  if (a.connections != null) sections.push(renderConnections(a.connections))
  if (a.latency != null) sections.push(renderLatency(a.latency))
  if (a.tunnels != null) sections.push(renderTunnels(a.tunnels))
  if (a.phases != null) sections.push(renderPhases(a.phases))
  return sections.join('\n')
}
