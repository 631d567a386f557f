/**
 * Configuration types and the parsers of the user-facing specs. Every parser
 * throws ConfigError naming the flag and the value, so the CLI can print one line.
 */
import { isIPv4, isIPv6 } from 'node:net'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { ConfigError } from './errors.ts'

export interface HostPort {
  host: string
  port: number
}

/** `--expose NAME=HOST:PORT`: a local TCP target published under a service name. */
export interface ExposeSpec {
  name: string
  target: HostPort
}

/** `--tunnel PEER:SVC@BIND` (peer set) or `--tunnel-by-name SVC@BIND` (peer undefined). */
export interface TunnelSpec {
  /** Stable id for logs and the state machine: the spec as the user wrote it. */
  id: string
  service: string
  peer?: string
  bind: HostPort
}

/** Limits a public node's relay server applies to each relayed connection. */
export interface RelayLimits {
  maxReservations: number
  /** Bytes per relayed connection, both directions together. */
  maxBytes: bigint
  maxDurationMs: number
}

/**
 * Tunnels ride the relay when no direct path exists, so the defaults are sized for real
 * traffic (an ssh session, a file copy), not libp2p's 128 KiB / 2 min signalling defaults.
 */
export const DEFAULT_RELAY_LIMITS: RelayLimits = {
  maxReservations: 128,
  maxBytes: 4n * 1024n ** 3n,
  maxDurationMs: 24 * 60 * 60_000
}

export interface NodeConfig {
  listen: string[]
  /** Extra addresses to advertise (a VPS behind a 1:1 NAT knows its public address). */
  announce: string[]
  bootstrap: string[]
  relay: RelayLimits
  expose: ExposeSpec[]
  tunnels: TunnelSpec[]
  mdns: boolean
  autonat: boolean
}

export const DEFAULT_LISTEN = ['/ip4/0.0.0.0/udp/0/quic-v1', '/ip4/0.0.0.0/tcp/0']

/**
 * `--listen none`: no listener at all. A private node then accepts connections only
 * through its relay slot (no open port; and the bench's way to force the relayed path).
 */
export const NO_LISTEN = 'none'

const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/

export function parseServiceName (flag: string, spec: string, name: string): string {
  if (!SERVICE_NAME.test(name)) {
    throw new ConfigError(flag, spec, `service name ${JSON.stringify(name)} must be 1-63 letters, digits, '.', '_' or '-'`)
  }
  return name
}

/** Parses `HOST:PORT` or `[V6]:PORT`. Port 0 is allowed only where `allowZero` is set. */
export function parseHostPort (flag: string, spec: string, value: string, allowZero = false): HostPort {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(value)
  if (match == null) {
    throw new ConfigError(flag, spec, `expected HOST:PORT, got ${JSON.stringify(value)}`)
  }
  const host = match[1] ?? match[2] ?? ''
  const port = Number(match[3])
  if (!Number.isInteger(port) || port > 65535 || (port === 0 && !allowZero)) {
    throw new ConfigError(flag, spec, `port ${match[3]} out of range (${allowZero ? 0 : 1}-65535)`)
  }
  if (match[1] != null && !isIPv6(host)) {
    throw new ConfigError(flag, spec, `${JSON.stringify(host)} is not an IPv6 address`)
  }
  if (!isIPv4(host) && !isIPv6(host) && !/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/.test(host)) {
    throw new ConfigError(flag, spec, `${JSON.stringify(host)} is not a host name or IP address`)
  }
  return { host, port }
}

export function parseExpose (value: string): ExposeSpec {
  const eq = value.indexOf('=')
  if (eq < 0) {
    throw new ConfigError('expose', value, 'expected NAME=HOST:PORT')
  }
  const name = parseServiceName('expose', value, value.slice(0, eq))
  return { name, target: parseHostPort('expose', value, value.slice(eq + 1)) }
}

export function parseTunnel (value: string): TunnelSpec {
  const at = value.lastIndexOf('@')
  const colon = value.indexOf(':')
  if (at < 0 || colon < 0 || colon > at) {
    throw new ConfigError('tunnel', value, 'expected PEER:SERVICE@HOST:PORT')
  }
  const peer = value.slice(0, colon)
  try {
    peerIdFromString(peer)
  } catch {
    throw new ConfigError('tunnel', value, `${JSON.stringify(peer)} is not a peer id`)
  }
  const service = parseServiceName('tunnel', value, value.slice(colon + 1, at))
  return { id: value, peer, service, bind: parseHostPort('tunnel', value, value.slice(at + 1), true) }
}

export function parseTunnelByName (value: string): TunnelSpec {
  const at = value.lastIndexOf('@')
  if (at < 0) {
    throw new ConfigError('tunnel-by-name', value, 'expected SERVICE@HOST:PORT')
  }
  const service = parseServiceName('tunnel-by-name', value, value.slice(0, at))
  return { id: value, service, bind: parseHostPort('tunnel-by-name', value, value.slice(at + 1), true) }
}

export function parseMultiaddr (flag: string, value: string): Multiaddr {
  try {
    return multiaddr(value)
  } catch (err) {
    throw new ConfigError(flag, value, `not a multiaddr (${(err as Error).message})`)
  }
}

export function parseBootstrap (value: string): Multiaddr {
  const ma = parseMultiaddr('bootstrap', value)
  if (ma.getComponents().find(c => c.name === 'p2p') == null) {
    throw new ConfigError('bootstrap', value, 'must end in /p2p/<peer id> so the bootstrap can be authenticated')
  }
  return ma
}

export interface RawConfig {
  listen?: string[]
  announce?: string[]
  relay?: Partial<RelayLimits>
  bootstrap?: string[]
  expose?: string[]
  tunnel?: string[]
  tunnelByName?: string[]
  mdns?: boolean
  autonat?: boolean
}

/** Validates everything at once: a bad value anywhere is reported before anything starts. */
export function validateConfig (raw: RawConfig): NodeConfig {
  const bootstrap = raw.bootstrap ?? []
  bootstrap.forEach(parseBootstrap)
  let listen = raw.listen != null && raw.listen.length > 0 ? raw.listen : DEFAULT_LISTEN
  if (listen.includes(NO_LISTEN)) {
    if (listen.length > 1) throw new ConfigError('listen', NO_LISTEN, 'cannot be combined with other listen addresses')
    if (bootstrap.length === 0) throw new ConfigError('listen', NO_LISTEN, 'a node without --bootstrap is public and must listen')
    listen = []
  }
  listen.forEach(addr => parseMultiaddr('listen', addr))
  const announce = raw.announce ?? []
  announce.forEach(addr => parseMultiaddr('announce', addr))

  const expose = (raw.expose ?? []).map(parseExpose)
  const names = new Set<string>()
  for (const [i, spec] of expose.entries()) {
    if (names.has(spec.name)) {
      throw new ConfigError('expose', raw.expose?.[i] ?? '', `duplicate service name ${JSON.stringify(spec.name)}`)
    }
    names.add(spec.name)
  }

  const tunnels = [
    ...(raw.tunnel ?? []).map(parseTunnel),
    ...(raw.tunnelByName ?? []).map(parseTunnelByName)
  ]
  const binds = new Set<string>()
  for (const t of tunnels) {
    const key = `${t.bind.host}:${t.bind.port}`
    // Port 0 asks the OS for a free port: never a clash.
    if (t.bind.port !== 0 && binds.has(key)) {
      throw new ConfigError(t.peer != null ? 'tunnel' : 'tunnel-by-name', t.id, `bind address ${key} is used by another tunnel`)
    }
    binds.add(key)
  }

  const relay = { ...DEFAULT_RELAY_LIMITS, ...raw.relay }
  return { listen, announce, bootstrap, relay, expose, tunnels, mdns: raw.mdns ?? false, autonat: raw.autonat ?? false }
}
