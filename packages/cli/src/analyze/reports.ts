/**
 * The reports of `punchgate analyze`: pure functions from records to plain objects
 * (printed as JSON with --json, or as text by render.ts). Field meanings follow
 * docs/events.md.
 */
import { num, str, type LogRecord, type ParsedSource } from './records.ts'

/** pino's numeric levels. */
const WARN = 40
const ERROR = 50

/** Joining for longer than this is worth a look: a bootstrap that is slow or unreachable. */
export const SLOW_JOIN_MS = 10_000

/** Losing the bootstrap this shortly before shutting down is the mesh stopping together, not a fault. */
export const SHUTDOWN_GRACE_MS = 2_000

export interface Stats {
  count: number
  min: number
  mean: number
  p95: number
  p99: number
  max: number
}

/** Nearest-rank percentiles; undefined for no samples. */
export function stats (samples: number[]): Stats | undefined {
  if (samples.length === 0) return undefined
  const sorted = [...samples].sort((a, b) => a - b)
  const rank = (p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? 0
  return {
    count: sorted.length,
    min: sorted[0] ?? 0,
    mean: sorted.reduce((sum, x) => sum + x, 0) / sorted.length,
    p95: rank(0.95),
    p99: rank(0.99),
    max: sorted[sorted.length - 1] ?? 0
  }
}

function groupBy<T> (items: T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>()
  for (const item of items) {
    const k = key(item)
    const group = groups.get(k)
    if (group == null) groups.set(k, [item])
    else group.push(item)
  }
  return groups
}

// ---- summary ----

export interface NodeSummary {
  node: string
  role?: string
  sources: string[]
  from: number
  to: number
  started: number
  stopped: number
  records: number
  warnings: number
  errors: number
}

export interface Summary {
  sources: Array<{ source: string, lines: number, records: number, skipped: number }>
  from?: number
  to?: number
  durationMs: number
  nodes: NodeSummary[]
  events: Record<string, number>
}

export function summary (sources: ParsedSource[], records: LogRecord[]): Summary {
  const nodes = [...groupBy(records, r => r.node).entries()].map(([node, rs]): NodeSummary => {
    const role = rs.find(r => r.event === 'node.started')?.fields.role
    return {
      node,
      ...(typeof role === 'string' ? { role } : {}),
      sources: [...new Set(rs.map(r => r.source))],
      from: rs[0]?.t ?? 0,
      to: rs[rs.length - 1]?.t ?? 0,
      started: rs.filter(r => r.event === 'node.started').length,
      stopped: rs.filter(r => r.event === 'node.stopped').length,
      records: rs.length,
      warnings: rs.filter(r => r.level >= WARN && r.level < ERROR).length,
      errors: rs.filter(r => r.level >= ERROR).length
    }
  })
  const events: Record<string, number> = {}
  for (const [name, rs] of [...groupBy(records, r => r.event).entries()].sort((a, b) => b[1].length - a[1].length)) {
    events[name] = rs.length
  }
  const from = records[0]?.t
  const to = records[records.length - 1]?.t
  return {
    sources: sources.map(s => ({ source: s.source, lines: s.lines, records: s.records.length, skipped: s.skipped })),
    ...(from != null ? { from } : {}),
    ...(to != null ? { to } : {}),
    durationMs: from != null && to != null ? to - from : 0,
    nodes,
    events
  }
}

// ---- connections ----

export interface PeerConnections {
  node: string
  peer: string
  /** The peer's own log is in the input too. */
  known: boolean
  connects: number
  disconnects: number
  direct: number
  relayed: number
  /** Durations of connections that closed within the log. */
  sessions?: Stats
  /** Connections still open when the node's log ends. */
  openAtEnd: number
}

export interface Connections {
  peers: PeerConnections[]
  /** Per node: connects and disconnects per minute of its log. */
  churn: Array<{ node: string, connects: number, disconnects: number, minutes: number, perMinute: number }>
  /** Hole-punch rounds per node and peer (`holepunch.*`), with the time a successful one took. */
  holepunch: Array<{ node: string, peer: string, started: number, succeeded: number, failed: number, ms?: Stats }>
}

export function connections (records: LogRecord[]): Connections {
  const knownNodes = new Set(records.filter(r => r.event === 'node.started').map(r => r.node))
  const peers: PeerConnections[] = []
  const churn: Connections['churn'] = []
  for (const [node, rs] of groupBy(records, r => r.node)) {
    const end = rs[rs.length - 1]?.t ?? 0
    const start = rs[0]?.t ?? 0
    const links = rs.filter(r => r.event === 'peer.connected' || r.event === 'peer.disconnected' || r.event === 'node.started')
    const byPeer = new Map<string, PeerConnections>()
    const durations = new Map<string, number[]>()
    /** Open connections by peer + address -> opening times (a peer may hold several to one address). */
    let open = new Map<string, number[]>()
    for (const r of links) {
      // A restart drops every connection the previous run had.
      if (r.event === 'node.started') { open = new Map(); continue }
      const peer = str(r, 'peer')
      const entry = byPeer.get(peer) ?? {
        node, peer, known: knownNodes.has(peer), connects: 0, disconnects: 0, direct: 0, relayed: 0, openAtEnd: 0
      }
      byPeer.set(peer, entry)
      const key = `${peer} ${str(r, 'addr')}`
      if (r.event === 'peer.connected') {
        entry.connects++
        if (r.fields.direct === true) entry.direct++
        else entry.relayed++
        open.set(key, [...(open.get(key) ?? []), r.t])
      } else {
        entry.disconnects++
        const opened = open.get(key)?.shift()
        if (opened != null) durations.set(peer, [...(durations.get(peer) ?? []), r.t - opened])
      }
    }
    for (const [key, times] of open) {
      const entry = byPeer.get(key.slice(0, key.indexOf(' ')))
      if (entry != null) entry.openAtEnd += times.length
    }
    for (const entry of byPeer.values()) {
      const sessions = stats(durations.get(entry.peer) ?? [])
      peers.push(sessions != null ? { ...entry, sessions } : entry)
    }
    const connects = [...byPeer.values()].reduce((sum, p) => sum + p.connects, 0)
    const disconnects = [...byPeer.values()].reduce((sum, p) => sum + p.disconnects, 0)
    const minutes = (end - start) / 60_000
    churn.push({ node, connects, disconnects, minutes, perMinute: minutes > 0 ? (connects + disconnects) / minutes : 0 })
  }
  const punches = records.filter(r => r.event.startsWith('holepunch.') && r.event !== 'holepunch.refused')
  const holepunch = [...groupBy(punches, r => `${r.node}\n${str(r, 'peer')}`).entries()].map(([key, rs]) => {
    const [node = '', peer = ''] = key.split('\n')
    const succeeded = rs.filter(r => r.event === 'holepunch.succeeded')
    const ms = stats(succeeded.map(r => num(r, 'ms')))
    return {
      node,
      peer,
      started: rs.filter(r => r.event === 'holepunch.started').length,
      succeeded: succeeded.length,
      failed: rs.filter(r => r.event === 'holepunch.failed').length,
      ...(ms != null ? { ms } : {})
    }
  })
  return { peers, churn, holepunch }
}

// ---- latency ----

export interface PeerLatency extends Stats {
  node: string
  peer: string
  paths: string[]
}

/** RTT statistics per node and peer, from `peer.rtt`. */
export function latency (records: LogRecord[]): PeerLatency[] {
  const samples = records.filter(r => r.event === 'peer.rtt')
  return [...groupBy(samples, r => `${r.node} ${str(r, 'peer')}`).values()].flatMap(rs => {
    const first = rs[0]
    const s = stats(rs.map(r => num(r, 'rttMs')))
    if (first == null || s == null) return []
    return [{ node: first.node, peer: str(first, 'peer'), paths: [...new Set(rs.map(r => str(r, 'path')))], ...s }]
  })
}

// ---- tunnels ----

export interface TunnelTraffic {
  node: string
  side: string
  /** The tunnel spec (client side, `connect:...` for punchgate connect) or the service (server side). */
  tunnel: string
  opened: number
  closed: number
  /** Connections that ended in a reset on either end. */
  failed: number
  rejected: Record<string, number>
  bytesIn: number
  bytesOut: number
  paths: Record<string, number>
  durations?: Stats
}

export interface TunnelLifecycle {
  node: string
  tunnel: string
  activations: Record<string, number>
  deactivations: number
  connectFailures: number
}

export interface Tunnels {
  traffic: TunnelTraffic[]
  lifecycle: TunnelLifecycle[]
}

export function tunnels (records: LogRecord[]): Tunnels {
  // A summary of rejections the daemon did not log one by one names no service: a row of its own.
  const keyOf = (r: LogRecord): string => `${r.node}\n${str(r, 'side')}\n${r.event === 'tunnel.rejected-suppressed' ? '(not logged)' : str(r, 'tunnel') || str(r, 'service')}`
  const relevant = records.filter(r => ['tunnel.opened', 'tunnel.closed', 'tunnel.rejected', 'tunnel.rejected-suppressed'].includes(r.event))
  const traffic = [...groupBy(relevant, keyOf).entries()].map(([key, rs]): TunnelTraffic => {
    const [node = '', side = '', tunnel = ''] = key.split('\n')
    const closed = rs.filter(r => r.event === 'tunnel.closed')
    const rejected: Record<string, number> = {}
    const paths: Record<string, number> = {}
    for (const r of rs) {
      if (r.event === 'tunnel.rejected') rejected[str(r, 'reason')] = (rejected[str(r, 'reason')] ?? 0) + 1
      if (r.event === 'tunnel.rejected-suppressed') {
        for (const [reason, n] of Object.entries(r.fields.reasons ?? {})) {
          if (typeof n === 'number' && Number.isFinite(n)) rejected[reason] = (rejected[reason] ?? 0) + n
        }
      }
      if (r.event === 'tunnel.opened') paths[str(r, 'path')] = (paths[str(r, 'path')] ?? 0) + 1
    }
    const durations = stats(closed.map(r => num(r, 'ms')))
    return {
      node,
      side,
      tunnel,
      // tunnel.opened is logged at debug level: closes count too, so an info-level log still adds up.
      opened: Math.max(rs.filter(r => r.event === 'tunnel.opened').length, closed.length),
      closed: closed.length,
      failed: closed.filter(r => r.fields.error != null).length,
      rejected,
      bytesIn: closed.reduce((sum, r) => sum + num(r, 'bytesIn'), 0),
      bytesOut: closed.reduce((sum, r) => sum + num(r, 'bytesOut'), 0),
      paths,
      ...(durations != null ? { durations } : {})
    }
  })

  const changes = records.filter(r => ['tunnel.activated', 'tunnel.deactivated', 'tunnel.connect-failed', 'tunnel.listening'].includes(r.event))
  const lifecycle = [...groupBy(changes, r => `${r.node}\n${str(r, 'tunnel')}`).entries()].map(([key, rs]): TunnelLifecycle => {
    const [node = '', tunnel = ''] = key.split('\n')
    const activations: Record<string, number> = {}
    for (const r of rs.filter(r => r.event === 'tunnel.activated')) activations[str(r, 'path')] = (activations[str(r, 'path')] ?? 0) + 1
    return {
      node,
      tunnel,
      activations,
      deactivations: rs.filter(r => r.event === 'tunnel.deactivated').length,
      connectFailures: rs.filter(r => r.event === 'tunnel.connect-failed').length
    }
  })
  return { traffic, lifecycle }
}

// ---- phases ----

export interface PhaseChange {
  t: number
  node: string
  from: string
  to: string
  reason: string
}

export interface Anomaly {
  t: number
  node: string
  kind: string
  detail: string
}

export interface Phases {
  timeline: PhaseChange[]
  /** Per node: milliseconds spent in each phase, from node.started to node.stopped or the log's end. */
  time: Array<{ node: string, ms: Record<string, number>, joinMs?: number }>
  anomalies: Anomaly[]
}

/** Events that are anomalies on their own, and how to describe each. */
const ANOMALY_EVENTS: Record<string, (r: LogRecord) => string> = {
  'relay.lost': r => `relay reservation on ${str(r, 'relay')} lost`,
  'bootstrap.dial-failed': r => `bootstrap ${str(r, 'addr')} unreachable (attempt ${num(r, 'attempt')}): ${str(r, 'error')}`,
  'service.publish-failed': r => `publishing ${str(r, 'name')} failed: ${str(r, 'error')}`,
  'service.resolve-failed': r => `looking up ${str(r, 'name')} failed (attempt ${num(r, 'attempt')}): ${str(r, 'error')}`,
  'tunnel.connect-failed': r => `${str(r, 'tunnel')}: provider ${str(r, 'peer')} unreachable: ${str(r, 'error')}`,
  'tunnel.deactivated': r => `${str(r, 'tunnel')} lost its peer: ${str(r, 'reason')}`,
  'holepunch.failed': r => `hole punch to ${str(r, 'peer')} failed`
}

export function phases (records: LogRecord[]): Phases {
  const timeline: PhaseChange[] = []
  const time: Phases['time'] = []
  const anomalies: Anomaly[] = []
  for (const [node, rs] of groupBy(records, r => r.node)) {
    const ms: Record<string, number> = {}
    let phase: string | undefined
    let since = 0
    let startedAt: number | undefined
    let joinMs: number | undefined
    let lastT = rs[0]?.t ?? 0
    let readyLost: Anomaly[] = []
    const leave = (t: number): void => {
      if (phase != null) ms[phase] = (ms[phase] ?? 0) + (t - since)
    }
    for (const r of rs) {
      if (r.event === 'node.started') {
        if (phase != null && phase !== 'stopped') {
          anomalies.push({ t: r.t, node, kind: 'unclean-restart', detail: 'started again without a node.stopped: killed or crashed' })
          // The dead time between its last line and the restart was spent in no phase.
          leave(lastT)
        }
        phase = 'joining'
        since = r.t
        startedAt = r.t
      } else if (r.event === 'phase.changed') {
        const change = { t: r.t, node, from: str(r, 'from'), to: str(r, 'to'), reason: str(r, 'reason') }
        timeline.push(change)
        leave(r.t)
        phase = change.to
        since = r.t
        if (change.to === 'ready' && startedAt != null) {
          const took = r.t - startedAt
          joinMs ??= took
          if (took > SLOW_JOIN_MS) anomalies.push({ t: r.t, node, kind: 'slow-join', detail: `ready ${(took / 1000).toFixed(1)} s after start` })
          startedAt = undefined
        }
        if (change.from === 'ready' && change.to === 'joining') {
          readyLost.push({ t: r.t, node, kind: 'ready-lost', detail: `back to joining: ${change.reason}` })
        }
        if (change.to === 'shutting-down') {
          readyLost = readyLost.filter(a => r.t - a.t > SHUTDOWN_GRACE_MS)
        }
      } else if (r.event === 'node.stopped') {
        leave(r.t)
        phase = 'stopped'
        since = r.t
      } else if (r.event === 'tunnel.closed' && r.fields.error != null) {
        anomalies.push({ t: r.t, node, kind: 'tunnel-reset', detail: `${str(r, 'tunnel') || str(r, 'service')}: ${str(r, 'error')}` })
      } else if (ANOMALY_EVENTS[r.event] != null) {
        anomalies.push({ t: r.t, node, kind: r.event, detail: ANOMALY_EVENTS[r.event]?.(r) ?? '' })
      } else if (r.level >= ERROR) {
        anomalies.push({ t: r.t, node, kind: 'error', detail: r.event })
      }
      lastT = r.t
    }
    const end = rs[rs.length - 1]?.t ?? since
    if (phase !== 'stopped') {
      leave(end)
      if (phase != null) anomalies.push({ t: end, node, kind: 'no-stop', detail: `log ends in phase ${phase} without node.stopped: still running, killed, or truncated` })
    }
    anomalies.push(...readyLost)
    delete ms.stopped
    time.push({ node, ms, ...(joinMs != null ? { joinMs } : {}) })
  }
  anomalies.sort((a, b) => a.t - b.t)
  return { timeline, time, anomalies }
}

export const REPORTS = ['summary', 'connections', 'latency', 'tunnels', 'phases'] as const
export type ReportName = typeof REPORTS[number]

export interface Analysis {
  summary?: Summary
  connections?: Connections
  latency?: PeerLatency[]
  tunnels?: Tunnels
  phases?: Phases
}

export function analyze (sources: ParsedSource[], records: LogRecord[], wanted: readonly ReportName[] = REPORTS): Analysis {
  const analysis: Analysis = {}
  if (wanted.includes('summary')) analysis.summary = summary(sources, records)
  if (wanted.includes('connections')) analysis.connections = connections(records)
  if (wanted.includes('latency')) analysis.latency = latency(records)
  if (wanted.includes('tunnels')) analysis.tunnels = tunnels(records)
  if (wanted.includes('phases')) analysis.phases = phases(records)
  return analysis
}
