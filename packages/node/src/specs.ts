/**
 * Parsers for the parts of the user-facing specs that came with access control, UDP,
 * expose-net and relay choice: `/udp` suffixes, `?allow=` lists, CIDR and port lists,
 * destinations, sizes and durations. Each throws ConfigError naming the flag and value.
 */
import { isIP, isIPv4 } from 'node:net'
import { peerIdFromString } from '@libp2p/peer-id'
import { ConfigError } from './errors.ts'

export type Transport = 'tcp' | 'udp'

/** An inclusive port range; a single port is `{ from: p, to: p }`. */
export interface PortRange {
  from: number
  to: number
}

/** A network in CIDR notation, already checked. */
export interface Cidr {
  address: string
  prefix: number
  family: 'ipv4' | 'ipv6'
}

/** A spec's text with its `?allow=ID,ID` (or `?allow=any`) suffix taken off. */
export interface SpecOptions {
  body: string
  /** The listed peer ids, or `any`: every peer, on purpose. */
  allow?: string[] | 'any'
}

/** Parses one peer id, or throws naming the flag. Returns the canonical string form. */
export function parsePeerId (flag: string, spec: string, value: string): string {
  try {
    return peerIdFromString(value).toString()
  } catch {
    throw new ConfigError(flag, spec, `${JSON.stringify(value)} is not a peer id`)
  }
}

/**
 * Splits `BODY?allow=ID1,ID2` or `BODY?allow=any`. The only option is `allow`; an empty
 * list is an error (it would lock everyone out by accident), and `any` stands alone.
 */
export function splitSpecOptions (flag: string, spec: string): SpecOptions {
  const q = spec.indexOf('?')
  if (q < 0) return { body: spec }
  const query = spec.slice(q + 1)
  const eq = query.indexOf('=')
  const key = eq < 0 ? query : query.slice(0, eq)
  if (key !== 'allow' || eq < 0) {
    throw new ConfigError(flag, spec, `unknown option ${JSON.stringify(key)} (the only one is ?allow=PEER_ID,...)`)
  }
  const ids = query.slice(eq + 1).split(',').map(id => id.trim())
  if (ids.some(id => id === '')) {
    throw new ConfigError(flag, spec, '?allow= needs a comma-separated list of peer ids, or any')
  }
  if (ids.includes('any')) {
    if (ids.length > 1) throw new ConfigError(flag, spec, '?allow=any opens the service to every peer; it cannot be mixed with peer ids')
    return { body: spec.slice(0, q), allow: 'any' }
  }
  return { body: spec.slice(0, q), allow: [...new Set(ids.map(id => parsePeerId(flag, spec, id)))] }
}

/** Splits a trailing `/udp` or `/tcp` off `text`; no suffix means TCP. */
export function splitTransport (text: string): { text: string, transport: Transport } {
  const match = /^(.*)\/(udp|tcp)$/.exec(text)
  return match == null ? { text, transport: 'tcp' } : { text: match[1] ?? '', transport: match[2] as Transport }
}

/** `22,80,443,8000-8100`: a non-empty list of ports and inclusive ranges, 1-65535. */
export function parsePorts (flag: string, spec: string, text: string): PortRange[] {
  const ranges: PortRange[] = []
  for (const item of text.split(',')) {
    const match = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(item)
    const from = Number(match?.[1])
    const to = Number(match?.[2] ?? match?.[1])
    if (match == null || from < 1 || to > 65535 || from > to) {
      throw new ConfigError(flag, spec, `${JSON.stringify(item)} is not a port (1-65535) or a range of ports (LOW-HIGH)`)
    }
    ranges.push({ from, to })
  }
  return ranges
}

/** `192.168.1.0/24`, `fd00::/64`, or a bare address (a /32 or /128). */
export function parseCidr (flag: string, spec: string, text: string): Cidr {
  const slash = text.indexOf('/')
  const address = slash < 0 ? text : text.slice(0, slash)
  const version = isIP(address)
  if (version === 0) {
    throw new ConfigError(flag, spec, `${JSON.stringify(text)} is not an IP network (CIDR like 192.168.1.0/24)`)
  }
  const max = version === 4 ? 32 : 128
  const prefixText = slash < 0 ? String(max) : text.slice(slash + 1)
  const prefix = Number(prefixText)
  if (!/^\d{1,3}$/.test(prefixText) || prefix > max) {
    throw new ConfigError(flag, spec, `prefix length in ${JSON.stringify(text)} must be 0-${max}`)
  }
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' }
}

/** A client-chosen destination: an IP literal and a port (`192.168.1.10:22`, `[fd00::5]:22`). */
export function parseDestination (flag: string, spec: string, text: string): { host: string, port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text)
  const host = match?.[1] ?? match?.[2] ?? ''
  const port = Number(match?.[3])
  if (match == null || isIP(host) === 0 || (match[1] != null && isIPv4(host))) {
    throw new ConfigError(flag, spec, `destination ${JSON.stringify(text)} must be IP:PORT (IPv6 in brackets); host names are not resolved`)
  }
  if (port < 1 || port > 65535) {
    throw new ConfigError(flag, spec, `destination port ${match[3]} out of range (1-65535)`)
  }
  return { host, port }
}

const BYTE_UNITS: Record<string, bigint> = {
  '': 1n, b: 1n, k: 1000n, kb: 1000n, m: 1000n ** 2n, mb: 1000n ** 2n, g: 1000n ** 3n, gb: 1000n ** 3n, t: 1000n ** 4n, tb: 1000n ** 4n,
  kib: 1024n, mib: 1024n ** 2n, gib: 1024n ** 3n, tib: 1024n ** 4n
}

/** `4GiB`, `500MB`, `1048576`: a positive byte count (SI and IEC units). */
export function parseBytes (flag: string, text: string): bigint {
  const match = /^(\d+)\s*([a-z]*)$/i.exec(text.trim())
  const unit = BYTE_UNITS[match?.[2]?.toLowerCase() ?? 'x']
  if (match == null || unit == null || BigInt(match[1] ?? '0') === 0n) {
    throw new ConfigError(flag, text, 'expected a positive size such as 4GiB, 500MB or 1048576')
  }
  return BigInt(match[1] ?? '0') * unit
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** `90s`, `30m`, `24h`, `7d`, `500ms`: a positive duration in milliseconds. A bare number is seconds. */
export function parseDuration (flag: string, text: string): number {
  const match = /^(\d+)\s*(ms|s|m|h|d)?$/i.exec(text.trim())
  const ms = Number(match?.[1]) * (DURATION_UNITS[match?.[2]?.toLowerCase() ?? 's'] ?? NaN)
  if (match == null || !Number.isSafeInteger(ms) || ms <= 0) {
    throw new ConfigError(flag, text, 'expected a positive duration such as 90s, 30m, 24h or 7d')
  }
  return ms
}

/** A positive whole number (reservations, sessions). */
export function parseCount (flag: string, text: string | number): number {
  const value = typeof text === 'number' ? text : /^\d+$/.test(text.trim()) ? Number(text) : NaN
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new ConfigError(flag, String(text), 'expected a positive whole number')
  }
  return value
}

/**
 * Splits `BODY?peer=ID1,ID2` (`--tunnel-by-name`): the providers this tunnel trusts.
 * An empty list is an error, like `?allow=`.
 */
export function splitPeerOption (flag: string, spec: string): { body: string, peer?: string[] } {
  const q = spec.indexOf('?')
  if (q < 0) return { body: spec }
  const query = spec.slice(q + 1)
  if (!query.startsWith('peer=')) {
    const key = query.split('=')[0] ?? ''
    throw new ConfigError(flag, spec, `unknown option ${JSON.stringify(key)} (the only one is ?peer=PEER_ID,...)`)
  }
  const ids = query.slice('peer='.length).split(',').map(id => id.trim())
  if (ids.some(id => id === '')) {
    throw new ConfigError(flag, spec, '?peer= needs a comma-separated list of peer ids')
  }
  return { body: spec.slice(0, q), peer: [...new Set(ids.map(id => parsePeerId(flag, spec, id)))] }
}
