/**
 * Server side of `/punchgate/udp/1.0.0`: one stream is one remote sender's session. It
 * is admitted like a TCP tunnel (service, peer, destination, limits), then gets a UDP
 * socket of its own connected to the target, so the target's replies come back on
 * this stream and no other. The session ends when the client closes it, the stream
 * breaks, or nothing moves either way for the idle timeout.
 */
import { createSocket, type Socket } from 'node:dgram'
import { lookup } from 'node:dns/promises'
import type { Connection, Stream } from '@libp2p/interface'
import type { HostPort } from '../config.ts'
import { HANDSHAKE_TIMEOUT_MS, TARGET_CONNECT_TIMEOUT_MS } from '../constants.ts'
import type { NodeEvents } from '../events.ts'
import { DatagramChannel } from './datagram.ts'
import type { LogLimit } from '../log-limit.ts'
import { emitRejected, formatHostPort, pathOf, readRequest, sendReject } from './expose.ts'
import { writeFrame } from './handshake.ts'
import type { ServiceTable } from './services.ts'

/** A UDP socket that sends to and receives from `target` only. */
export async function connectUdpTarget (target: HostPort): Promise<Socket> {
  const { address, family } = await lookup(target.host)
  const socket = createSocket(family === 6 ? 'udp6' : 'udp4')
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`connect to ${target.host}:${target.port} timed out`)), TARGET_CONNECT_TIMEOUT_MS)
      socket.once('error', err => { clearTimeout(timer); reject(err) })
      socket.connect(target.port, address, () => { clearTimeout(timer); resolve() })
    })
  } catch (err) {
    socket.close()
    throw err
  }
  socket.removeAllListeners('error')
  return socket
}

export interface UdpExposeHandlerInit {
  table: ServiceTable
  events: NodeEvents
  /** Shared with the TCP handler: one log budget per peer. */
  rejections: LogLimit
  idleMs: number
}

export function createUdpExposeHandler (init: UdpExposeHandlerInit): (stream: Stream, connection: Pick<Connection, 'remotePeer' | 'direct' | 'remoteAddr'>) => Promise<void> {
  const { events, table, rejections, idleMs } = init

  return async (stream, connection) => {
    const peer = connection.remotePeer.toString()
    const path = pathOf(connection)
    const handshake = AbortSignal.timeout(HANDSHAKE_TIMEOUT_MS)

    const request = await readRequest(stream, handshake, () => {
      emitRejected(events, rejections, { side: 'server', peer, service: '', reason: 'bad-request', transport: 'udp' })
    })
    if (request == null) return
    const { service } = request
    const destination = request.destination != null ? { destination: formatHostPort(request.destination) } : {}
    const admission = table.admit({ peer, service, transport: 'udp', ...(request.destination != null ? { destination: request.destination } : {}) })
    if (!admission.ok) {
      emitRejected(events, rejections, { side: 'server', peer, service, reason: admission.reason, transport: 'udp', ...destination })
      await sendReject(stream, admission.reason, admission.message, handshake)
      return
    }

    let socket: Socket
    try {
      socket = await connectUdpTarget(admission.target)
      await writeFrame(stream, { accepted: true }, handshake)
    } catch (err) {
      admission.release()
      if (stream.status !== 'open') return
      emitRejected(events, rejections, { side: 'server', peer, service, reason: 'target-unreachable', transport: 'udp', ...destination })
      await sendReject(stream, 'target-unreachable', (err as Error).message, handshake)
      return
    }

    const started = Date.now()
    // Idleness on the monotonic clock, as setTimeout's: a wall clock stepped forward must
    // not make a busy session look idle.
    let lastActive = performance.now()
    let timer: ReturnType<typeof setTimeout> | undefined
    let idled = false
    // The target may not listen (ICMP port unreachable) now and come back later: the session carries on.
    socket.on('error', () => {})

    await new Promise<void>(resolve => {
      const channel = new DatagramChannel(stream, {
        onDatagram: datagram => {
          lastActive = performance.now()
          socket.send(datagram)
        },
        onClose: error => {
          clearTimeout(timer)
          socket.close()
          admission.release()
          const { datagramsIn, datagramsOut, bytesIn, bytesOut, dropped } = channel.counts
          events.emitEvent('tunnel.closed', {
            side: 'server', peer, service, transport: 'udp', bytesIn, bytesOut, datagramsIn, datagramsOut, dropped,
            ms: Date.now() - started, ...destination, ...(error != null ? { error: error.message } : {}),
            ...(idled ? { closedBy: 'idle' as const } : {})
          })
          resolve()
        }
      })
      socket.on('message', datagram => {
        lastActive = performance.now()
        channel.send(datagram)
      })
      const check = (): void => {
        const idle = performance.now() - lastActive
        if (idle < idleMs) {
          timer = setTimeout(check, idleMs - idle)
          return
        }
        idled = true
        channel.close()
      }
      timer = setTimeout(check, idleMs)
      events.emitEvent('tunnel.opened', { side: 'server', peer, service, path, transport: 'udp', ...destination })
    })
  }
}
