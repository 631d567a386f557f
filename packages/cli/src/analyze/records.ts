/**
 * Event-log lines to records: each JSON line with an `event` field (docs/events.md) becomes
 * one record, tagged with the node that logged it. Anything else (pretty-printed lines,
 * libp2p debug output, blank lines) is counted and skipped.
 */

export interface LogRecord {
  /** Epoch milliseconds. */
  t: number
  level: number
  event: string
  /** The peer id of the node that logged it (from its `node.started`), else the source's name. */
  node: string
  source: string
  fields: Record<string, unknown>
}

export interface ParsedSource {
  source: string
  lines: number
  skipped: number
  records: LogRecord[]
}

function timeOf (value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value
  if (typeof value === 'string') {
    const t = Date.parse(value)
    return Number.isNaN(t) ? undefined : t
  }
  return undefined
}

/** Parses one log (one file, or stdin). Several daemons' logs concatenated are told apart by their `node.started`. */
export function parseLog (source: string, text: string): ParsedSource {
  const records: LogRecord[] = []
  let node = source
  // A daemon logs its listeners before node.started names it: those records wait for the name.
  let unnamed: LogRecord[] = []
  let running = false
  let lines = 0
  let skipped = 0
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    lines++
    let value: unknown
    try {
      value = JSON.parse(line)
    } catch {
      skipped++
      continue
    }
    if (typeof value !== 'object' || value === null) { skipped++; continue }
    const { event, level, time, ...fields } = value as Record<string, unknown>
    const t = timeOf(time)
    if (typeof event !== 'string' || t == null) { skipped++; continue }
    const record = { t, level: typeof level === 'number' ? level : 30, event, node: running ? node : source, source, fields }
    records.push(record)
    if (event === 'node.started' && typeof fields.peerId === 'string') {
      node = fields.peerId
      running = true
      for (const r of [...unnamed, record]) r.node = node
      unnamed = []
    } else if (event === 'node.stopped') {
      running = false
    } else if (!running) {
      unnamed.push(record)
    }
  }
  return { source, lines, skipped, records }
}

/** Every source's records in time order (stable for equal times, so a file's own order holds). */
export function mergeRecords (sources: ParsedSource[]): LogRecord[] {
  return sources.flatMap(s => s.records).sort((a, b) => a.t - b.t)
}

export function str (record: LogRecord, field: string): string {
  const value = record.fields[field]
  return typeof value === 'string' ? value : ''
}

export function num (record: LogRecord, field: string): number {
  const value = record.fields[field]
  return typeof value === 'number' && Number.isFinite(value) ? value : 0
}
