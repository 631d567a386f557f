/**
 * The udx transport's own sockets (transport.ts): one IPv4 socket, and beside it, on the
 * same port, an IPv6-only one (when the host has IPv6 and the port is free there). No NAT
 * on IPv6, so the IPv6 socket's candidates are the host's global IPv6 addresses, and a
 * punch over IPv6 is the same dance, through stateful firewalls instead of NATs.
 */
import { isIPv6 } from 'node:net'
import { networkInterfaces } from 'node:os'
import type { Logger } from '@libp2p/interface'
import type UDX from 'udx-native'
import type { UdxAddress, UdxSocket } from 'udx-native'
import { globalIPv6 } from '../../holepunch/candidates.ts'
import type { HostPort } from './addr.ts'

/**
 * Socket buffers: measured in the NAT lab, 100 MiB echoed at 22 MB/s with the kernel's
 * defaults and 39-40 MB/s with 4 MiB (docs/nat-traversal.md). The kernel caps them at
 * net.core.rmem_max / wmem_max.
 */
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024

export type OnDatagram = (socket: UdxSocket, message: Buffer, from: UdxAddress) => void

export class UdxSockets {
  readonly v4: UdxSocket
  /** Undefined without IPv6, or when the IPv4 socket is bound to one address (`host`). */
  readonly v6?: UdxSocket

  private constructor (v4: UdxSocket, v6: UdxSocket | undefined) {
    this.v4 = v4
    if (v6 != null) this.v6 = v6
  }

  /** Binds the IPv4 socket to `host:port` (port 0: any), and the IPv6 one to the same port when `host` is 0.0.0.0. */
  static open (udx: UDX, port: number, host: string, onDatagram: OnDatagram, log: Logger): UdxSockets {
    const v4 = udx.createSocket()
    v4.bind(port, host)
    listen(v4, onDatagram)
    log('udx socket on %s:%d', v4.address().host, v4.address().port)
    if (host !== '0.0.0.0') return new UdxSockets(v4, undefined)
    const v6 = udx.createSocket({ ipv6Only: true })
    try {
      v6.bind(v4.address().port, '::')
    } catch (err) {
      log('no IPv6 udx socket on port %d: %e', v4.address().port, err)
      void v6.close().catch(() => {})
      return new UdxSockets(v4, undefined)
    }
    listen(v6, onDatagram)
    return new UdxSockets(v4, v6)
  }

  get port (): number {
    return this.v4.address().port
  }

  /** The socket that sends to `host`: the IPv6 one for an IPv6 address. */
  for (host: string): UdxSocket | undefined {
    return isIPv6(host) ? this.v6 : this.v4
  }

  /** The address family `socket` takes datagrams of (4 or 6). */
  family (socket: UdxSocket): number {
    return socket === this.v6 ? 6 : 4
  }

  all (): UdxSocket[] {
    return this.v6 != null ? [this.v4, this.v6] : [this.v4]
  }

  /**
   * This host's own addresses for the sockets: non-internal IPv4 interfaces, and global IPv6
   * ones when the IPv6 socket is open (never link-local or unique-local, as for TCP:
   * holepunch/observed.ts).
   */
  localAddresses (interfaces = networkInterfaces): HostPort[] {
    const port = this.port
    const all = Object.values(interfaces()).flatMap(list => list ?? [])
    const v4 = all.filter(i => i.family === 'IPv4' && !i.internal).map(i => ({ host: i.address, port }))
    const v6 = this.v6 == null ? [] : all.filter(i => i.family === 'IPv6' && !i.internal && globalIPv6(i.address)).map(i => ({ host: i.address, port }))
    return [...v4, ...v6]
  }
}

function listen (socket: UdxSocket, onDatagram: OnDatagram): void {
  try {
    socket.setRecvBufferSize(SOCKET_BUFFER_BYTES)
    socket.setSendBufferSize(SOCKET_BUFFER_BYTES)
  } catch {}
  socket.on('message', (message, from) => { onDatagram(socket, message, from) })
}
