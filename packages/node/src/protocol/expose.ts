/**
 * Server side of the tunnel protocol: read the request, admit it (service, peer,
 * destination, session limits), connect to the target, then accept and pipe. A peer can
 * only ever reach the host:port the operator configured for the name it asked for, or
 * an address inside the networks and ports of an `--expose-net` service.
 */
import { connect, type Socket } from 'node:net'
import type { Connection, Stream } from '@libp2p/interface'
import type { HostPort } from '../config.ts'
import { HANDSHAKE_TIMEOUT_MS, TARGET_CONNECT_TIMEOUT_MS } from '../constants.ts'
import type { EventMap, NodeEvents, Path } from '../events.ts'
import type { LogLimit } from '../log-limit.ts'
import { decodeRequest, readFrame, writeFrame, type RejectReason, type TunnelRequest } from './handshake.ts'
import { pipeSocketStream } from './pipe.ts'
import type { ServiceTable } from './services.ts'

export function pathOf (connection: Pick<Connection, 'direct' | 'remoteAddr'>): Path {
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
  table: ServiceTable
  events: NodeEvents
  /** Per-peer budget of logged rejections; every rejection is still dispatched as an event. */
  rejections: LogLimit
  /** How long a peer has to send its request; tests shorten it. */
  handshakeTimeoutMs?: number
}

/** `192.168.1.10:22`, `[fd00::5]:22`: a destination as logged. */
export function formatHostPort (hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`
}

/** A server-side rejection: always dispatched, logged only within the peer's budget (the rest are summed up later). */
export function emitRejected (events: NodeEvents, rejections: LogLimit, fields: EventMap['tunnel.rejected']): void {
  events.emitEvent('tunnel.rejected', fields, { log: rejections.allow(fields.peer, fields.reason) })
}

/**
 * Reads and decodes the request. A frame that never arrives whole resets the stream; one that
 * arrives but breaks the rules (a service name outside the name rule) is answered `bad-request`.
 * Either way the rejection names no service: nothing the peer chose reaches the log.
 */
export async function readRequest (
  stream: Stream, signal: AbortSignal, onBadRequest: () => void
): Promise<TunnelRequest | undefined> {
  let frame: Uint8Array
  try {
    frame = await readFrame(stream, signal)
  } catch (err) {
    onBadRequest()
    stream.abort(err as Error)
    return undefined
  }
  try {
    return decodeRequest(frame)
  } catch (err) {
    onBadRequest()
    await sendReject(stream, 'bad-request', (err as Error).message, signal)
    return undefined
  }
}

export function createExposeHandler (init: ExposeHandlerInit): (stream: Stream, connection: Pick<Connection, 'remotePeer' | 'direct' | 'remoteAddr'>) => Promise<void> {
  const { events, table, rejections, handshakeTimeoutMs = HANDSHAKE_TIMEOUT_MS } = init

  return async (stream, connection) => {
    const peer = connection.remotePeer.toString()
    const path = pathOf(connection)
    const handshake = AbortSignal.timeout(handshakeTimeoutMs)

    const request = await readRequest(stream, handshake, () => emitRejected(events, rejections, { side: 'server', peer, service: '', reason: 'bad-request' }))
    if (request == null) return
    const { service } = request
    const destination = request.destination != null ? { destination: formatHostPort(request.destination) } : {}

    const admission = table.admit({ peer, service, transport: 'tcp', ...(request.destination != null ? { destination: request.destination } : {}) })
    if (!admission.ok) {
      emitRejected(events, rejections, { side: 'server', peer, service, reason: admission.reason, ...destination })
      await sendReject(stream, admission.reason, admission.message, handshake)
      return
    }

    try {
      let socket: Socket
      try {
        socket = await connectTarget(admission.target)
      } catch {
        emitRejected(events, rejections, { side: 'server', peer, service, reason: 'target-unreachable', ...destination })
        await sendReject(stream, 'target-unreachable', undefined, handshake)
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
      events.emitEvent('tunnel.opened', { side: 'server', peer, service, path, ...destination })
      const result = await pipeSocketStream(socket, stream)
      events.emitEvent('tunnel.closed', {
        side: 'server', peer, service, bytesIn: result.bytesIn, bytesOut: result.bytesOut, ms: Date.now() - started,
        ...destination, ...(result.error != null ? { error: result.error.message } : {})
      })
    } finally {
      admission.release()
    }
  }
}

/** Replies with a reject and closes the stream; a peer that will not read it gets a reset. */
export async function sendReject (stream: Stream, reason: RejectReason, message: string | undefined, signal: AbortSignal): Promise<void> {
  try {
    await writeFrame(stream, { accepted: false, reason, ...(message != null ? { message } : {}) }, signal)
    await stream.close({ signal })
  } catch {
    stream.abort(new Error(`rejected: ${reason}`))
  }
}
