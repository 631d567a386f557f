/**
 * TCP that dials from its listening port.
 *
 * A NAT maps each outgoing connection of a host to a public address. The mapping the
 * bootstrap observes is worth telling other peers only if the same local port also dials
 * them and accepts from them, and @libp2p/tcp dials from ephemeral ports. This wraps it:
 * listeners set SO_REUSEPORT, and dials to non-loopback IPv4 addresses go out of a socket
 * bound to the listening port with SO_REUSEPORT (node-unix-socket's createReuseportFd).
 * Two peers that dial each other this way at the same moment get one TCP connection
 * (simultaneous open) through cone NATs; see holepunch/puncher.ts.
 *
 * Linux only (Node's `reusePort` listen option); elsewhere this is plain @libp2p/tcp.
 */
import { createRequire } from 'node:module'
import { isIPv4 } from 'node:net'
import { tcp, type TCPComponents, type TCPOptions } from '@libp2p/tcp'
import { serviceCapabilities, transportSymbol } from '@libp2p/interface'
import type { Connection, CreateListenerOptions, DialTransportOptions, Listener, MultiaddrConnection, Transport, Upgrader } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

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

export function reuseportTcp (init: TCPOptions = {}): (components: TCPComponents) => Transport {
  if (!canReusePort) return tcp(init)
  // `listenOpts` end up in net.Server#listen(); Node >= 22.12 sets SO_REUSEPORT for `reusePort`.
  const listenOpts = { ...init.listenOpts, reusePort: true } as TCPOptions['listenOpts']
  const factory = tcp({ ...init, listenOpts })
  return components => new ReuseportTcp(factory(components))
}

function tcpHostPort (ma: Multiaddr): { host: string, port: number } | undefined {
  const components = ma.getComponents()
  const host = components.find(c => c.name === 'ip4')?.value
  const port = components.find(c => c.name === 'tcp')?.value
  if (host == null || port == null || components.some(c => c.name === 'p2p-circuit')) return undefined
  return { host, port: Number(port) }
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

class ReuseportTcp implements Transport {
  readonly [transportSymbol] = true
  readonly [Symbol.toStringTag] = '@punchgate/reuseport-tcp'
  readonly [serviceCapabilities] = ['@libp2p/transport']
  private readonly inner: Transport
  private readonly listeners = new Set<Listener>()

  constructor (inner: Transport) {
    this.inner = inner
  }

  dialFilter (multiaddrs: Multiaddr[]): Multiaddr[] {
    return this.inner.dialFilter(multiaddrs)
  }

  listenFilter (multiaddrs: Multiaddr[]): Multiaddr[] {
    return this.inner.listenFilter(multiaddrs)
  }

  createListener (options: CreateListenerOptions): Listener {
    const listener = this.inner.createListener(options)
    this.listeners.add(listener)
    listener.addEventListener('close', () => this.listeners.delete(listener), { once: true })
    return listener
  }

  async dial (ma: Multiaddr, options: DialTransportOptions): Promise<Connection> {
    const fd = this.socketFor(ma, options.signal)
    // @libp2p/tcp spreads its dial options into net.connect(): `fd` makes it connect the bound socket.
    let dialOptions = fd == null ? options : { ...options, fd } as DialTransportOptions
    if ((options as { initiator?: boolean }).initiator === false) {
      dialOptions = { ...dialOptions, upgrader: asResponder(options.upgrader) }
    }
    return this.inner.dial(ma, dialOptions)
  }

  /** A socket bound to the listening port for a dial that may cross a NAT, if there is one. */
  private socketFor (ma: Multiaddr, signal: AbortSignal): number | undefined {
    const target = tcpHostPort(ma)
    if (createReuseportFd == null || target == null || target.host.startsWith('127.') || signal.aborted) return undefined
    const port = this.listeningPort()
    if (port == null) return undefined
    try {
      return createReuseportFd(port, '0.0.0.0')
    } catch {
      return undefined
    }
  }

  private listeningPort (): number | undefined {
    for (const listener of this.listeners) {
      for (const addr of listener.getAddrs()) {
        const hostPort = tcpHostPort(addr)
        if (hostPort != null && isIPv4(hostPort.host) && hostPort.port !== 0) return hostPort.port
      }
    }
    return undefined
  }
}
