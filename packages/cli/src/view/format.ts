/**
 * Plain-text building blocks for the human-readable reports: sizes, durations, tables.
 * Every cell and field value is printed through escapeControl: much of what the reports
 * show came from peers (service names, errors, addresses), and none of it may drive the
 * terminal.
 */
import { escapeControl } from '@punchgate/node'

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

export function formatBytes (bytes: number): string {
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${UNITS[unit]}`
}

/** `850 ms`, `12.3 s`, `4m 05s`, `3h 02m`, `2d 04h`. */
export function formatDuration (ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`
  const s = Math.floor(ms / 1000)
  const pad = (n: number): string => String(n).padStart(2, '0')
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${pad(Math.floor(s / 60) % 60)}m`
  return `${Math.floor(s / 86_400)}d ${pad(Math.floor(s / 3600) % 24)}h`
}

/** Milliseconds with a precision that suits RTTs: `0.42`, `12.3`, `250`. */
export function formatMs (ms: number): string {
  if (ms < 1) return ms.toFixed(2)
  if (ms < 100) return ms.toFixed(1)
  return ms.toFixed(0)
}

/** Left-aligned columns separated by two spaces; an empty body prints `  (none)`. */
export function table (headers: string[], rows: string[][]): string {
  if (rows.length === 0) return '  (none)\n'
  const printable = rows.map(r => r.map(escapeControl))
  const widths = headers.map((h, i) => Math.max(h.length, ...printable.map(r => (r[i] ?? '').length)))
  const line = (cells: string[]): string => `  ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()}\n`
  return line(headers) + printable.map(line).join('')
}

/** `key: value` lines with the values aligned; each of `lines(values)` stays in its column. */
export function fields (pairs: Array<[string, string | Lines]>): string {
  const width = Math.max(...pairs.map(([k]) => k.length)) + 1
  const indent = '\n' + ' '.repeat(width + 1)
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(width)} ${(typeof v === 'string' ? [v] : v.lines).map(escapeControl).join(indent)}\n`).join('')
}

/** Several values shown one per line in a field: a newline inside a value is escaped, not a new line. */
export interface Lines {
  lines: string[]
}

export function lines (values: string[]): Lines {
  return { lines: values }
}

/** A peer id shortened for a table: enough of the tail to tell peers apart. */
export function shortPeer (peer: string): string {
  return peer.length > 16 ? `${peer.slice(0, 6)}…${peer.slice(-6)}` : peer
}
