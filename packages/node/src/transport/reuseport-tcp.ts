/**
 * TCP that dials from its listening port.
 *
 * A NAT maps each outgoing connection of a host to a public address. The mapping the
 * bootstrap observes is worth telling other peers only if the same local port also dials
 * them and accepts from them, and @libp2p/tcp dials from ephemeral ports. This wraps it:
 * listeners set SO_REUSEPORT, and dials to non-loopback addresses go out of a socket bound
 * to the listening port of the target's family with SO_REUSEPORT (node-unix-socket's
 * createReuseportFd): an IPv4 target from the IPv4 listener's port, an IPv6 target from the
 * IPv6 listener's (`--listen /ip6/::/tcp/P`); a family we do not listen on dials from an
 * ephemeral port.
 * Two peers that dial each other this way at the same moment get one TCP connection
 * (simultaneous open) through cone NATs; see holepunch/puncher.ts.
 *
 * Linux only (Node's `reusePort` listen option); elsewhere this is plain @libp2p/tcp.
 */
import { createRequire } from 'node:module'
import { tcp, type TCPComponents, type TCPOptions } from '@libp2p/tcp'
import { serviceCapabilities, transportSymbol } from '@libp2p/interface'
import type { Connection, CreateListenerOptions, DialTransportOptions, Listener, MultiaddrConnection, PeerId, Transport, Upgrader } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { unmapped } from '../holepunch/candidates.ts'

type CreateReuseportFd = (port: number, host: string) => number

function loadCreateReuseportFd (): CreateReuseportFd | undefined {
  if (process.platform !== 'linux') return undefined
  try {
    const mod = createRequire(import.meta.url)('node-unix-socket') as { createReuseportFd: CreateReuseportFd }
    return mod.createReuseportFd
  } catch {
    return undefined
  }
}

const createReuseportFd = loadCreateReuseportFd()

/** Whether this platform can dial from the listening port (and so hole-punch over TCP). */
export const canReusePort = createReuseportFd != null

export interface ReuseportOptions {
  /** Tests only: dials to loopback leave from the listening port too (every in-process node is on loopback). */
  loopback?: boolean
}

export function reuseportTcp (init: TCPOptions = {}, options: ReuseportOptions = {}): (components: TCPComponents) => Transport {
  if (!canReusePort) return tcp(init)
  // `listenOpts` end up in net.Server#listen(); Node >= 22.12 sets SO_REUSEPORT for `reusePort`.
  const listenOpts = { ...init.listenOpts, reusePort: true } as TCPOptions['listenOpts']
  const factory = tcp({ ...init, listenOpts })
  return components => new ReuseportTcp(factory(components), options.loopback === true)
}

type Family = 'ip4' | 'ip6'

interface TcpHostPort { family: Family, host: string, port: number }

function tcpHostPort (ma: Multiaddr): TcpHostPort | undefined {
  const components = ma.getComponents()
  const ip = components[0]
  const port = components.find(c => c.name === 'tcp')?.value
  if (ip?.value == null || (ip.name !== 'ip4' && ip.name !== 'ip6') || port == null || components.some(c => c.name === 'p2p-circuit')) return undefined
  return { family: ip.name, host: ip.value, port: Number(port) }
}

function isLoopback (host: string): boolean {
  const ip = unmapped(host).ip
  return ip.startsWith('127.') || ip === '::1'
}

/** A listening socket's bind address for each family: the wildcard, as a listener on `0.0.0.0` or `::` has. */
const ANY: Record<Family, string> = { ip4: '0.0.0.0', ip6: '::' }

/**
 * Where a dial to `target` binds: the port our listener of the target's family listens on,
 * at that family's wildcard address. Undefined (an ephemeral port) for loopback targets
 * (unless `loopback`, tests only), relayed addresses, and families we do not listen on.
 */
export function dialBinding (target: Multiaddr, listening: Multiaddr[], loopback = false): { host: string, port: number } | undefined {
  const to = tcpHostPort(target)
  if (to == null || (!loopback && isLoopback(to.host))) return undefined
  // An IPv4-mapped IPv6 target is an IPv4 host reached through an IPv6 socket: not ours to pick a port for.
  if (to.family === 'ip6' && unmapped(to.host).family === 'ipv4') return undefined
  for (const addr of listening) {
    const from = tcpHostPort(addr)
    if (from != null && from.family === to.family && from.port !== 0) return { host: ANY[to.family], port: from.port }
  }
  return undefined
}

/**
 * A dial that must play the listening side (one end of a simultaneous open). The upgrader
 * runs the security and multistream handshakes as responder for `initiator: false`, but
 * the stream muxer takes its role from the connection's direction, which @libp2p/tcp set
 * to outbound: both ends would be yamux clients ("Both endpoints are clients").
 */
function asResponder (upgrader: Upgrader): Upgrader {
  return Object.create(upgrader, {
    upgradeOutbound: {
      value: async (maConn: MultiaddrConnection, opts: Parameters<Upgrader['upgradeOutbound']>[1]) => {
        (maConn as { direction: 'inbound' | 'outbound' }).direction = 'inbound'
        return upgrader.upgradeOutbound(maConn, opts)
      }
    }
  }) as Upgrader
}

/** An inbound upgrade's deadline, as libp2p's own (`inboundUpgradeTimeout`, 10 s by default). */
const FLIPPED_UPGRADE_TIMEOUT_MS = 10_000

/** The parts of libp2p's upgrader that gate an inbound connection; not on its public type. */
interface InboundGate {
  components?: { connectionManager?: { acceptIncomingConnection: (maConn: MultiaddrConnection) => boolean, afterUpgradeInbound: () => void } }
  shouldBlockConnection?: (method: 'denyInboundConnection', maConn: MultiaddrConnection) => Promise<void>
}

/**
 * A connection our listener accepted that must be upgraded as the initiator: a punch round
 * where the peer's dial reached our listener before ours left (a full-cone or public side),
 * while the peer dialled as the responder (holepunch/puncher.ts). The inbound gates still
 * run (connection manager limits and gater), then the handshakes run as for a dial to
 * `peer`: TLS checks that the remote is `peer`, and yamux is the client.
 */
async function upgradeAsInitiator (upgrader: Upgrader, maConn: MultiaddrConnection, peer: PeerId, opts: Parameters<Upgrader['upgradeInbound']>[1]): Promise<void> {
  const gate = upgrader as unknown as InboundGate
  const manager = gate.components?.connectionManager
  if (manager == null || gate.shouldBlockConnection == null) {
    await upgrader.upgradeInbound(maConn, opts)
    return
  }
  const accepted = manager.acceptIncomingConnection(maConn)
  try {
    if (!accepted) throw new Error('Connection denied')
    await gate.shouldBlockConnection.call(upgrader, 'denyInboundConnection', maConn)
    const conn = maConn as { remoteAddr: Multiaddr, direction: 'inbound' | 'outbound' }
    conn.remoteAddr = conn.remoteAddr.encapsulate(`/p2p/${peer.toString()}`)
    conn.direction = 'outbound'
    const signal = AbortSignal.any([AbortSignal.timeout(FLIPPED_UPGRADE_TIMEOUT_MS), ...(opts?.signal != null ? [opts.signal] : [])])
    await upgrader.upgradeOutbound(maConn, { ...opts, signal, initiator: true } as Parameters<Upgrader['upgradeOutbound']>[1])
  } finally {
    if (accepted) manager.afterUpgradeInbound()
  }
}

/** What the puncher tells the transport about a round (see `expectInbound`). */
export interface PunchRoles {
  /**
   * Until `signal` aborts, the first connection our listener accepts from one of `ips` is
   * upgraded as the TLS/multistream initiator towards `peer` (which must prove it is `peer`).
   */
  expectInbound: (peer: PeerId, ips: string[], signal: AbortSignal) => void
}

/** The reuseport transport's PunchRoles, if libp2p runs it. */
export function punchRoles (transports: Transport[]): PunchRoles | undefined {
  return transports.find((t): t is ReuseportTcp => t instanceof ReuseportTcp)
}

interface Expectation { peer: PeerId, ips: Set<string> }

class ReuseportTcp implements Transport, PunchRoles {
  readonly [transportSymbol] = true
  readonly [Symbol.toStringTag] = '@punchgate/reuseport-tcp'
  readonly [serviceCapabilities] = ['@libp2p/transport']
  private readonly inner: Transport
  private readonly listeners = new Set<Listener>()
  private readonly expected = new Set<Expectation>()
  private readonly loopback: boolean

  constructor (inner: Transport, loopback: boolean) {
    this.inner = inner
    this.loopback = loopback
  }

  dialFilter (multiaddrs: Multiaddr[]): Multiaddr[] {
    return this.inner.dialFilter(multiaddrs)
  }

  listenFilter (multiaddrs: Multiaddr[]): Multiaddr[] {
    return this.inner.listenFilter(multiaddrs)
  }

  expectInbound (peer: PeerId, ips: string[], signal: AbortSignal): void {
    if (signal.aborted || ips.length === 0) return
    const expectation = { peer, ips: new Set(ips.map(ip => unmapped(ip).ip)) }
    this.expected.add(expectation)
    signal.addEventListener('abort', () => this.expected.delete(expectation), { once: true })
  }

  createListener (options: CreateListenerOptions): Listener {
    const listener = this.inner.createListener({ ...options, upgrader: this.listenerUpgrader(options.upgrader) })
    this.listeners.add(listener)
    listener.addEventListener('close', () => this.listeners.delete(listener), { once: true })
    return listener
  }

  /**
   * `reusePort: false` in the options: an ordinary dial from an ephemeral port (the puncher's
   * plain dial to a standard peer, holepunch/puncher.ts); otherwise from the listening port.
   */
  async dial (ma: Multiaddr, options: DialTransportOptions): Promise<Connection> {
    const fd = (options as { reusePort?: boolean }).reusePort === false ? undefined : this.socketFor(ma, options.signal)
    // @libp2p/tcp spreads its dial options into net.connect(): `fd` makes it connect the bound socket.
    let dialOptions = fd == null ? options : { ...options, fd } as DialTransportOptions
    if ((options as { initiator?: boolean }).initiator === false) {
      dialOptions = { ...dialOptions, upgrader: asResponder(options.upgrader) }
    }
    return this.inner.dial(ma, dialOptions)
  }

  /** The listener's upgrader: as libp2p's, except for a connection a punch round expects (expectInbound). */
  private listenerUpgrader (upgrader: Upgrader): Upgrader {
    return Object.create(upgrader, {
      upgradeInbound: {
        value: async (maConn: MultiaddrConnection, opts: Parameters<Upgrader['upgradeInbound']>[1]) => {
          const expectation = this.takeExpectation(maConn)
          if (expectation == null) return upgrader.upgradeInbound(maConn, opts)
          return upgradeAsInitiator(upgrader, maConn, expectation.peer, opts)
        }
      }
    }) as Upgrader
  }

  /** The expectation `maConn`'s remote address meets, used up. */
  private takeExpectation (maConn: MultiaddrConnection): Expectation | undefined {
    const ip = maConn.remoteAddr.getComponents()[0]?.value
    if (ip == null) return undefined
    const from = unmapped(ip).ip
    for (const expectation of this.expected) {
      if (!expectation.ips.has(from)) continue
      this.expected.delete(expectation)
      return expectation
    }
    return undefined
  }

  /** A socket bound to the listening port for a dial that may cross a NAT or firewall, if there is one. */
  private socketFor (ma: Multiaddr, signal: AbortSignal): number | undefined {
    if (createReuseportFd == null || signal.aborted) return undefined
    const binding = dialBinding(ma, [...this.listeners].flatMap(l => l.getAddrs()), this.loopback)
    if (binding == null) return undefined
    try {
      return createReuseportFd(binding.port, binding.host)
    } catch {
      return undefined
    }
  }
}
