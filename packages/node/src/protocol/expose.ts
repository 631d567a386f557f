/**
 * Server side of the tunnel protocol: read the request, connect to the exposed
 * target first, then accept and pipe. A peer can only ever reach the host:port the
 * operator configured for the name it asked for.
 */
import { connect, type Socket } from 'node:net'
import type { Connection, Stream } from '@libp2p/interface'
import type { ExposeSpec, HostPort } from '../config.ts'
import { HANDSHAKE_TIMEOUT_MS, TARGET_CONNECT_TIMEOUT_MS } from '../constants.ts'
import type { NodeEvents, Path } from '../events.ts'
import { decodeRequest, readFrame, writeFrame, type RejectReason } from './handshake.ts'
import { pipeSocketStream } from './pipe.ts'

export function pathOf (connection: Connection): Path {
  return connection.direct && !connection.remoteAddr.toString().includes('/p2p-circuit') ? 'direct' : 'relay'
}

/** Opens a TCP connection to the target, or rejects after `timeoutMs`. */
export async function connectTarget (target: HostPort, timeoutMs = TARGET_CONNECT_TIMEOUT_MS): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`connect to ${target.host}:${target.port} timed out`))
    }, timeoutMs)
    socket.once('connect', () => {
      clearTimeout(timer)
      socket.removeAllListeners('error')
      resolve(socket)
    })
    socket.once('error', err => {
      clearTimeout(timer)
      socket.destroy()
      reject(err)
    })
  })
}

export interface ExposeHandlerInit {
  services: ExposeSpec[]
  events: NodeEvents
}

export function createExposeHandler (init: ExposeHandlerInit): (stream: Stream, connection: Connection) => Promise<void> {
  const services = new Map(init.services.map(s => [s.name, s.target]))
  const { events } = init

  return async (stream, connection) => {
    const peer = connection.remotePeer.toString()
    const path = pathOf(connection)
    const handshake = AbortSignal.timeout(HANDSHAKE_TIMEOUT_MS)
    const reject = async (service: string, reason: RejectReason): Promise<void> => {
      events.emitEvent('tunnel.rejected', { side: 'server', peer, service, reason })
      try {
        await writeFrame(stream, { accepted: false, reason }, handshake)
        await stream.close({ signal: handshake })
      } catch {
        stream.abort(new Error(`rejected: ${reason}`))
      }
    }

    let service: string
    try {
      service = decodeRequest(await readFrame(stream, handshake)).service
    } catch (err) {
      events.emitEvent('tunnel.rejected', { side: 'server', peer, service: '', reason: 'bad-request' })
      stream.abort(err as Error)
      return
    }

    const target = services.get(service)
    if (target == null) {
      await reject(service, 'unknown-service')
      return
    }

    let socket: Socket
    try {
      socket = await connectTarget(target)
    } catch {
      await reject(service, 'target-unreachable')
      return
    }

    try {
      await writeFrame(stream, { accepted: true }, handshake)
    } catch (err) {
      socket.destroy()
      stream.abort(err as Error)
      return
    }

    const started = Date.now()
    events.emitEvent('tunnel.opened', { side: 'server', peer, service, path })
    const result = await pipeSocketStream(socket, stream)
    events.emitEvent('tunnel.closed', {
      side: 'server', peer, service, bytesIn: result.bytesIn, bytesOut: result.bytesOut, ms: Date.now() - started,
      ...(result.error != null ? { error: result.error.message } : {})
    })
  }
}
