/**
 * Configuration types and the parsers of the user-facing specs. Every parser
 * throws ConfigError naming the flag and the value, so the CLI can print one line.
 */
import { isIPv4, isIPv6 } from 'node:net'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { ConfigError } from './errors.ts'
import { accessOf } from './access.ts'
import {
  parseBytes, parseCidr, parseCount, parseDestination, parseDuration, parsePeerId, parsePorts,
  splitPeerOption, splitSpecOptions, splitTransport, type Cidr, type PortRange
} from './specs.ts'

export interface HostPort {
  host: string
  port: number
}

/** `--expose NAME=HOST:PORT[/udp][?allow=ID,...]`: a local target published under a service name. */
export interface ExposeSpec {
  name: string
  target: HostPort
  /** Set only for UDP; absent means TCP. */
  transport?: 'udp'
  /** Peers allowed to use this service, or `any` (`?allow=any`); absent means the node's rule applies (access.ts: accessOf). */
  allow?: string[] | 'any'
}

/**
 * `--expose-net NAME=CIDR[,CIDR...]:PORTS[/udp][?allow=ID,...]`: peers choose the
 * destination, which must be an address inside one of the networks and one of the ports.
 */
export interface ExposeNetSpec {
  name: string
  networks: Cidr[]
  ports: PortRange[]
  transport?: 'udp'
  allow?: string[] | 'any'
}

/** `--tunnel PEER:SVC@BIND` (peer set) or `--tunnel-by-name SVC@BIND` (peer undefined). */
export interface TunnelSpec {
  /** Stable id for logs and the state machine: the spec as the user wrote it. */
  id: string
  service: string
  peer?: string
  bind: HostPort
  /** Set only for UDP (`BIND/udp`); absent means TCP. */
  transport?: 'udp'
  /** `>HOST:PORT`: the destination asked of an `--expose-net` service. */
  destination?: HostPort
  /** By-name only, `?peer=ID,...`: the only providers this tunnel trusts (beats `--trust` and the pin). */
  trust?: string[]
}

/**
 * auto: reserve slots on up to two relays (connected bootstraps, then public nodes they
 * vouch for: relays/choice.ts) and dial through every relay known;
 * off: direct connections only, no relay at all; fixed: this relay (a multiaddr) only.
 */
export type RelayMode = { mode: 'auto' } | { mode: 'off' } | { mode: 'fixed', addr: string }

/** Limits on tunnelled sessions (TCP connections and UDP senders) this node serves. */
export interface SessionLimits {
  /** All peers together; undefined means no limit. */
  maxSessions?: number
  maxSessionsPerPeer?: number
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

/** libp2p's own cap on open connections, all peers together: the default. */
export const DEFAULT_MAX_CONNECTIONS = 300

/** Connections a public node keeps beside its relay slots (DHT peers, tunnels, dials), when the slots raise the cap. */
export const CONNECTIONS_BESIDE_RESERVATIONS = 100

/**
 * `--max-connections` unless given: libp2p's 300, or on a node that may be public, its
 * relay slots plus CONNECTIONS_BESIDE_RESERVATIONS if that is more. Each reservation holds
 * a connection, and past the cap libp2p refuses new ones: a relay given 1,000 slots under
 * the 300 cap held about 300 (docs/performance.md, "Sizing a bootstrap").
 */
export function defaultMaxConnections (mayBePublic: boolean, maxReservations: number): number {
  return mayBePublic ? Math.max(DEFAULT_MAX_CONNECTIONS, maxReservations + CONNECTIONS_BESIDE_RESERVATIONS) : DEFAULT_MAX_CONNECTIONS
}

/**
 * `--role`: auto follows reachability (without --bootstrap: public; with one: private until
 * a bootstrap's reach probe finds it reachable); public and private fix the role.
 */
export type RoleSetting = 'auto' | 'public' | 'private'

export const ROLE_SETTINGS: readonly RoleSetting[] = ['auto', 'public', 'private']

export interface NodeConfig {
  /** `--role`; see startsPublic() and mayBePublic(). */
  role: RoleSetting
  listen: string[]
  /** Extra addresses to advertise (a VPS behind a 1:1 NAT knows its public address). */
  announce: string[]
  bootstrap: string[]
  relay: RelayLimits
  /** Open connections at most, all peers together (libp2p refuses inbound ones past it). */
  maxConnections: number
  expose: ExposeSpec[]
  tunnels: TunnelSpec[]
  mdns: boolean
  autonat: boolean
  /** Serve Prometheus metrics on this address (`--metrics`). */
  metrics?: HostPort
  /** How often connected peers are pinged and `peer.rtt` logged; 0 turns it off. */
  rttIntervalMs: number
  /** Node-wide allow-list of peer ids, for services without a `?allow=` list of their own. */
  allow: string[]
  /** `--allow-any`: services without a list of their own are open to every peer, on purpose. */
  allowAny: boolean
  exposeNet: ExposeNetSpec[]
  limits: SessionLimits
  relayMode: RelayMode
  /** Whom a public node relays for: anyone, or only peers on the `--allow` list. */
  relayAllow: 'any' | 'allowed'
  /**
   * Where a public node takes spliced connections (docs/splice.md); undefined: circuits only.
   * `explicit`: given with --relay-splice, so a port that cannot be bound stops the node;
   * the default one only turns splicing off.
   */
  relaySplice?: { at: HostPort, explicit: boolean }
  /** A libp2p private-network key (@libp2p/pnet file contents): peers without it cannot connect. */
  swarmKey?: Uint8Array
  /** A UDP session with no datagram either way for this long is closed. */
  udpIdleMs: number
  /** `--trust`/`--trust-file`: the providers by-name tunnels without `?peer=` trust; empty: the pin, else first use. */
  trust: string[]
  /** The known-providers file (provider pins); undefined keeps pins in memory for the node's life. */
  knownProviders?: string
  /** A private node asks its router to forward its listen ports (NAT-PMP, PCP, UPnP-IGD); `--no-port-mapping` turns it off. */
  portMapping: boolean
  /** Punch a UDP path (transport/udx/) beside the TCP one, and answer peers' UDP observe requests; on unless `--no-udp-punch`. */
  udpPunch: boolean
  /** The udx socket's UDP port (`--udp-punch-port`); 0 picks a free one. */
  udpPunchPort: number
}

/** Long enough for WireGuard (25 s keepalives) and DNS retries, short enough to free streams of one-off senders. */
export const DEFAULT_UDP_IDLE_MS = 120_000

export const DEFAULT_RTT_INTERVAL_MS = 30_000

/**
 * Where a public node takes spliced connections unless `--relay-splice` says (docs/splice.md):
 * its first TCP listen address's host, on that port + 1 when the port is fixed (4001: 4002),
 * else on a port the OS picks. With no TCP listen address: off.
 */
export function defaultRelaySplice (listen: string[]): string {
  for (const addr of listen) {
    const match = /^\/ip([46])\/([^/]+)\/tcp\/(\d+)$/.exec(addr)
    if (match == null) continue
    const port = Number(match[3])
    const host = match[1] === '6' ? `[${match[2]}]` : match[2]!
    return `${host}:${port > 0 && port < 65535 ? port + 1 : 0}`
  }
  return 'off'
}

export const DEFAULT_LISTEN = ['/ip4/0.0.0.0/udp/0/quic-v1', '/ip4/0.0.0.0/tcp/0']

/**
 * `--listen none`: no listener at all. A private node then accepts connections only
 * through its relay slot (no open port; and the bench's way to force the relayed path).
 */
export const NO_LISTEN = 'none'

const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/

/** The name rule, for names from the wire too: a peer's request with any other name is a bad request. */
export function isServiceName (name: string): boolean {
  return SERVICE_NAME.test(name)
}

export function parseServiceName (flag: string, spec: string, name: string): string {
  if (!isServiceName(name)) {
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
  const { body, allow } = splitSpecOptions('expose', value)
  const eq = body.indexOf('=')
  if (eq < 0) {
    throw new ConfigError('expose', value, 'expected NAME=HOST:PORT[/udp]')
  }
  const name = parseServiceName('expose', value, body.slice(0, eq))
  const { text, transport } = splitTransport(body.slice(eq + 1))
  return {
    name,
    target: parseHostPort('expose', value, text),
    ...(transport === 'udp' ? { transport } : {}),
    ...(allow != null ? { allow } : {})
  }
}

export function parseExposeNet (value: string): ExposeNetSpec {
  const flag = 'expose-net'
  const { body, allow } = splitSpecOptions(flag, value)
  const eq = body.indexOf('=')
  const { text, transport } = splitTransport(body.slice(eq + 1))
  // Ports hold no colon, so the last one separates them even from IPv6 networks.
  const colon = text.lastIndexOf(':')
  if (eq < 0 || colon < 0) {
    throw new ConfigError(flag, value, 'expected NAME=CIDR[,CIDR...]:PORT[,PORT...][/udp]')
  }
  const name = parseServiceName(flag, value, body.slice(0, eq))
  return {
    name,
    networks: text.slice(0, colon).split(',').map(cidr => parseCidr(flag, value, cidr)),
    ports: parsePorts(flag, value, text.slice(colon + 1)),
    ...(transport === 'udp' ? { transport } : {}),
    ...(allow != null ? { allow } : {})
  }
}

/** `BIND[/udp][>DEST]`, the part of a tunnel spec after the `@`. */
function parseTunnelTarget (flag: string, value: string, text: string): Pick<TunnelSpec, 'bind' | 'transport' | 'destination'> {
  const gt = text.indexOf('>')
  const { text: bind, transport } = splitTransport(gt < 0 ? text : text.slice(0, gt))
  return {
    bind: parseHostPort(flag, value, bind, true),
    ...(transport === 'udp' ? { transport } : {}),
    ...(gt >= 0 ? { destination: parseDestination(flag, value, text.slice(gt + 1)) } : {})
  }
}

export function parseTunnel (value: string): TunnelSpec {
  if (value.includes('?peer=')) {
    throw new ConfigError('tunnel', value, '?peer= is for --tunnel-by-name; --tunnel already names its peer')
  }
  const at = value.lastIndexOf('@')
  const colon = value.indexOf(':')
  if (at < 0 || colon < 0 || colon > at) {
    throw new ConfigError('tunnel', value, 'expected PEER:SERVICE@HOST:PORT[/udp][>DEST_IP:PORT]')
  }
  const peer = value.slice(0, colon)
  try {
    peerIdFromString(peer)
  } catch {
    throw new ConfigError('tunnel', value, `${JSON.stringify(peer)} is not a peer id`)
  }
  const service = parseServiceName('tunnel', value, value.slice(colon + 1, at))
  return { id: value, peer, service, ...parseTunnelTarget('tunnel', value, value.slice(at + 1)) }
}

export function parseTunnelByName (value: string): TunnelSpec {
  const { body, peer } = splitPeerOption('tunnel-by-name', value)
  const at = body.indexOf('@')
  if (at < 0) {
    throw new ConfigError('tunnel-by-name', value, 'expected SERVICE@HOST:PORT[/udp][>DEST_IP:PORT][?peer=PEER_ID,...]')
  }
  const service = parseServiceName('tunnel-by-name', value, body.slice(0, at))
  return { id: value, service, ...parseTunnelTarget('tunnel-by-name', value, body.slice(at + 1)), ...(peer != null ? { trust: peer } : {}) }
}

/** `auto`, `off`, or the multiaddr of the one relay to use (ending in /p2p/<id>). */
export function parseRelayMode (value: string): RelayMode {
  if (value === 'auto' || value === 'off') return { mode: value }
  const ma = parseMultiaddr('relay-mode', value)
  if (ma.getComponents().find(c => c.name === 'p2p') == null) {
    throw new ConfigError('relay-mode', value, 'expected auto, off, or a relay multiaddr ending in /p2p/<peer id>')
  }
  if (value.includes('/p2p-circuit')) {
    throw new ConfigError('relay-mode', value, 'give the relay\'s own address, without /p2p-circuit')
  }
  return { mode: 'fixed', addr: value }
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
  role?: string
  listen?: string[]
  announce?: string[]
  relay?: Partial<RelayLimits>
  bootstrap?: string[]
  expose?: string[]
  tunnel?: string[]
  tunnelByName?: string[]
  mdns?: boolean
  autonat?: boolean
  metrics?: string
  rttIntervalMs?: number
  /** Peer ids (from --allow and --allow-file). */
  allow?: string[]
  /** `--allow-any`: services without a list of their own serve every peer. */
  allowAny?: boolean
  exposeNet?: string[]
  maxSessions?: string | number
  maxSessionsPerPeer?: string | number
  maxConnections?: string | number
  relayMode?: string
  relayAllow?: string
  /** The relay server limits as the user wrote them (`--relay-max-*`); they override `relay`. */
  relayMaxReservations?: string | number
  relayMaxBytes?: string
  relayMaxDuration?: string
  /** Where a public node takes spliced connections (HOST:PORT), or 'off'. */
  relaySplice?: string
  /** The swarm key file's contents (see swarm-key.ts: readSwarmKey checks and loads it). */
  swarmKey?: Uint8Array
  udpIdleTimeout?: string
  /** Peer ids (from --trust and --trust-file). */
  trust?: string[]
  /** The known-providers file's path. */
  knownProviders?: string
  /** `--no-port-mapping` gives false. @default true */
  portMapping?: boolean
  /** `--udp-punch` (`--no-udp-punch` turns it off). @default true */
  udpPunch?: boolean
  /** `--udp-punch-port`. @default 0 (any free port) */
  udpPunchPort?: number
}

/** The role a node takes at start: public without --bootstrap or with --role public. */
export function startsPublic (config: Pick<NodeConfig, 'role' | 'bootstrap'>): boolean {
  return config.role === 'public' || (config.role === 'auto' && config.bootstrap.length === 0)
}

/**
 * Whether the node may ever be public (and so needs a public node's parts: relay server,
 * splicer, the capped provider store): all but --role private and a node that cannot listen.
 */
export function mayBePublic (config: Pick<NodeConfig, 'role' | 'listen'>): boolean {
  return config.role !== 'private' && config.listen.length > 0
}

/** Flags that configure a relay server, which only a public node runs. */
const RELAY_SERVER_FLAGS = [
  ['relay-max-reservations', 'relayMaxReservations'], ['relay-max-bytes', 'relayMaxBytes'],
  ['relay-max-duration', 'relayMaxDuration'], ['relay-allow', 'relayAllow'], ['relay-splice', 'relaySplice']
] as const

/** @libp2p/pnet protects only connections that go through the libp2p upgrader; QUIC has its own handshake and skips it. */
function isQuic (addr: string): boolean {
  return /\/quic(-v1)?(\/|$)/.test(addr)
}

/** Validates everything at once: a bad value anywhere is reported before anything starts. */
export function validateConfig (raw: RawConfig): NodeConfig {
  const swarmKey = raw.swarmKey
  const defaultListen = swarmKey != null ? DEFAULT_LISTEN.filter(addr => !isQuic(addr)) : DEFAULT_LISTEN
  const bootstrap = raw.bootstrap ?? []
  bootstrap.forEach(parseBootstrap)
  const role = (raw.role ?? 'auto') as RoleSetting
  if (!ROLE_SETTINGS.includes(role)) throw new ConfigError('role', String(raw.role), 'expected auto, public or private')
  if (role === 'private' && bootstrap.length === 0) {
    throw new ConfigError('role', role, 'a private node needs --bootstrap to join the mesh through')
  }
  let listen = raw.listen != null && raw.listen.length > 0 ? raw.listen : defaultListen
  if (listen.includes(NO_LISTEN)) {
    if (listen.length > 1) throw new ConfigError('listen', NO_LISTEN, 'cannot be combined with other listen addresses')
    if (bootstrap.length === 0) throw new ConfigError('listen', NO_LISTEN, 'a node without --bootstrap is public and must listen')
    if (role === 'public') throw new ConfigError('listen', NO_LISTEN, 'a node with --role public must listen')
    listen = []
  }
  listen.forEach(addr => parseMultiaddr('listen', addr))
  const announce = raw.announce ?? []
  announce.forEach(addr => parseMultiaddr('announce', addr))
  const relayMode = raw.relayMode != null ? parseRelayMode(raw.relayMode) : { mode: 'auto' } as const
  if (swarmKey != null) {
    const addrs: Array<[string, string[]]> = [
      ['listen', listen], ['announce', announce], ['bootstrap', bootstrap],
      ['relay-mode', relayMode.mode === 'fixed' ? [relayMode.addr] : []]
    ]
    for (const [flag, list] of addrs) {
      const quic = list.find(isQuic)
      if (quic != null) throw new ConfigError(flag, quic, 'QUIC cannot carry a --swarm-key private network; use a /tcp address')
    }
  }

  const expose = (raw.expose ?? []).map(parseExpose)
  const exposeNet = (raw.exposeNet ?? []).map(parseExposeNet)
  const names = new Set<string>()
  const named: Array<[string, string, string]> = [
    ...expose.map((spec, i) => ['expose', raw.expose?.[i] ?? '', spec.name] as [string, string, string]),
    ...exposeNet.map((spec, i) => ['expose-net', raw.exposeNet?.[i] ?? '', spec.name] as [string, string, string])
  ]
  for (const [flag, spec, name] of named) {
    if (names.has(name)) {
      throw new ConfigError(flag, spec, `duplicate service name ${JSON.stringify(name)}`)
    }
    names.add(name)
  }

  const tunnels = [
    ...(raw.tunnel ?? []).map(parseTunnel),
    ...(raw.tunnelByName ?? []).map(parseTunnelByName)
  ]
  const binds = new Set<string>()
  for (const t of tunnels) {
    // A TCP and a UDP listener may share a host:port.
    const key = `${t.bind.host}:${t.bind.port}${t.transport === 'udp' ? '/udp' : ''}`
    // Port 0 asks the OS for a free port: never a clash.
    if (t.bind.port !== 0 && binds.has(key)) {
      throw new ConfigError(t.peer != null ? 'tunnel' : 'tunnel-by-name', t.id, `bind address ${key} is used by another tunnel`)
    }
    binds.add(key)
  }

  const metrics = raw.metrics != null ? parseHostPort('metrics', raw.metrics, raw.metrics, true) : undefined
  const udpPunchPort = raw.udpPunchPort ?? 0
  if (!Number.isInteger(udpPunchPort) || udpPunchPort < 0 || udpPunchPort > 65535) {
    throw new ConfigError('udp-punch-port', String(udpPunchPort), 'expected a port, 0-65535 (0: any free port)')
  }
  const rttIntervalMs = raw.rttIntervalMs ?? DEFAULT_RTT_INTERVAL_MS
  if (!Number.isFinite(rttIntervalMs) || rttIntervalMs < 0) {
    throw new ConfigError('rtt-interval', String(rttIntervalMs / 1000), 'expected a number of seconds, 0 or more')
  }

  const allow = [...new Set((raw.allow ?? []).map(id => parsePeerId('allow', id, id.trim())))]
  const allowAny = raw.allowAny ?? false
  if (allowAny && allow.length > 0) {
    throw new ConfigError('allow', allow[0] ?? '', 'cannot be combined with --allow-any (every peer); to open only some services to everyone, give those ?allow=any')
  }
  // Closed unless said otherwise: a service nobody may use is a mistake, caught before anything starts.
  for (const [flag, spec, service] of [
    ...expose.map((s, i) => ['expose', raw.expose?.[i] ?? '', s] as const),
    ...exposeNet.map((s, i) => ['expose-net', raw.exposeNet?.[i] ?? '', s] as const)
  ]) {
    if (accessOf(service, { allow, allowAny, swarmKey }) == null) {
      throw new ConfigError(flag, spec, 'nobody may use this service yet: name who may with --allow PEER_ID, ' +
        '--allow-file PATH or ?allow=PEER_ID, or open it to every peer with --allow-any or ?allow=any')
    }
  }

  if (!mayBePublic({ role, listen })) {
    for (const [flag, key] of RELAY_SERVER_FLAGS) {
      if (raw[key] != null) {
        const why = role === 'private' ? '--role private' : '--listen none'
        throw new ConfigError(flag, String(raw[key]), `only a public node runs a relay server, never one with ${why}`)
      }
    }
  }
  const relayAllow = raw.relayAllow ?? 'any'
  if (relayAllow !== 'any' && relayAllow !== 'allowed') {
    throw new ConfigError('relay-allow', relayAllow, 'expected any or allowed')
  }
  if (relayAllow === 'allowed' && allow.length === 0) {
    throw new ConfigError('relay-allow', relayAllow, 'relaying only for allowed peers needs --allow or --allow-file')
  }
  const relay = {
    ...DEFAULT_RELAY_LIMITS,
    ...raw.relay,
    ...(raw.relayMaxReservations != null ? { maxReservations: parseCount('relay-max-reservations', raw.relayMaxReservations) } : {}),
    ...(raw.relayMaxBytes != null ? { maxBytes: parseBytes('relay-max-bytes', raw.relayMaxBytes) } : {}),
    ...(raw.relayMaxDuration != null ? { maxDurationMs: parseDuration('relay-max-duration', raw.relayMaxDuration) } : {})
  }

  const maxConnections = raw.maxConnections != null
    ? parseCount('max-connections', raw.maxConnections)
    : defaultMaxConnections(mayBePublic({ role, listen }), relay.maxReservations)

  const spliceSpec = raw.relaySplice ?? defaultRelaySplice(listen)
  const relaySplice = spliceSpec === 'off' ? undefined : { at: parseHostPort('relay-splice', spliceSpec, spliceSpec, true), explicit: raw.relaySplice != null }

  const limits: SessionLimits = {
    ...(raw.maxSessions != null ? { maxSessions: parseCount('max-sessions', raw.maxSessions) } : {}),
    ...(raw.maxSessionsPerPeer != null ? { maxSessionsPerPeer: parseCount('max-sessions-per-peer', raw.maxSessionsPerPeer) } : {})
  }
  const udpIdleMs = raw.udpIdleTimeout != null ? parseDuration('udp-idle-timeout', raw.udpIdleTimeout) : DEFAULT_UDP_IDLE_MS

  return {
    role,
    listen,
    announce,
    bootstrap,
    relay,
    maxConnections,
    expose,
    tunnels,
    mdns: raw.mdns ?? false,
    autonat: raw.autonat ?? false,
    allow,
    allowAny,
    exposeNet,
    limits,
    relayMode,
    relayAllow,
    ...(mayBePublic({ role, listen }) && relaySplice != null ? { relaySplice } : {}),
    ...(swarmKey != null ? { swarmKey } : {}),
    udpIdleMs,
    ...(metrics != null ? { metrics } : {}),
    rttIntervalMs,
    portMapping: raw.portMapping ?? true,
    udpPunch: raw.udpPunch ?? true,
    udpPunchPort,
    trust: [...new Set((raw.trust ?? []).map(id => parsePeerId('trust', id, id.trim())))],
    ...(raw.knownProviders != null ? { knownProviders: raw.knownProviders } : {})
  }
}
