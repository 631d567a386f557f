/**
 * The `/punchgate/tunnel/1.0.0` handshake (docs/protocol.md): one varint-length-
 * prefixed JSON request from the client, one such reply from the server, then raw
 * bytes. Frames are bounded in size and in time; anything malformed is a ProtocolError.
 */
import { isIP } from 'node:net'
import type { Stream, StreamMessageEvent } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { isServiceName } from '../config.ts'
import { MAX_FRAME_BYTES } from '../constants.ts'
import { ProtocolError } from '../errors.ts'
import { escapeControl } from '../printable.ts'

export interface TunnelRequest {
  service: string
  /** For an `--expose-net` service: the address the client asks for. */
  destination?: { host: string, port: number }
}

/** Wire reason codes a server may refuse with. */
export type RejectReason =
  | 'unknown-service' | 'target-unreachable' | 'bad-request' | 'not-allowed'
  | 'destination-not-allowed' | 'too-many-sessions' | 'wrong-transport'

export type TunnelReply =
  | { accepted: true }
  | { accepted: false, reason: RejectReason, message?: string }

const REJECT_REASONS: ReadonlySet<string> = new Set<RejectReason>([
  'unknown-service', 'target-unreachable', 'bad-request', 'not-allowed',
  'destination-not-allowed', 'too-many-sessions', 'wrong-transport'
])

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

export function encodeFrame (value: TunnelRequest | TunnelReply): Uint8Array {
  const bytes = encoder.encode(JSON.stringify(value))
  if (bytes.byteLength > MAX_FRAME_BYTES) {
    throw new ProtocolError(`frame of ${bytes.byteLength} bytes exceeds ${MAX_FRAME_BYTES}`)
  }
  return bytes
}

function parseJsonObject (bytes: Uint8Array): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(decoder.decode(bytes))
  } catch {
    throw new ProtocolError('frame is not UTF-8 JSON')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError('frame is not a JSON object')
  }
  return value as Record<string, unknown>
}

export function decodeRequest (bytes: Uint8Array): TunnelRequest {
  const obj = parseJsonObject(bytes)
  // The name rule before anything else: a name that passes it is safe to log and to look up.
  if (typeof obj.service !== 'string' || !isServiceName(obj.service)) {
    throw new ProtocolError('request has no valid "service" (1-63 letters, digits, \'.\', \'_\' or \'-\')')
  }
  if (obj.destination === undefined) return { service: obj.service }
  const destination = obj.destination as Record<string, unknown> | null
  if (typeof destination !== 'object' || destination === null ||
      // An address, never a name: no lookup on a peer's behalf, and the host is safe to log.
      // No IPv6 zone id (`::1%lo`): it picks an interface and defeats the network checks.
      typeof destination.host !== 'string' || isIP(destination.host) === 0 || destination.host.includes('%') ||
      typeof destination.port !== 'number' || !Number.isInteger(destination.port) || destination.port < 1 || destination.port > 65535) {
    throw new ProtocolError('request has an invalid "destination"')
  }
  return { service: obj.service, destination: { host: destination.host, port: destination.port } }
}

export function decodeReply (bytes: Uint8Array): TunnelReply {
  const obj = parseJsonObject(bytes)
  if (obj.accepted === true) {
    return { accepted: true }
  }
  if (obj.accepted === false && typeof obj.reason === 'string' && REJECT_REASONS.has(obj.reason)) {
    // The server's words end up in our errors and logs: inert, whatever it sent.
    const message = typeof obj.message === 'string' ? escapeControl(obj.message.slice(0, 200)) : undefined
    return message == null
      ? { accepted: false, reason: obj.reason as RejectReason }
      : { accepted: false, reason: obj.reason as RejectReason, message }
  }
  throw new ProtocolError('reply is neither an accept nor a known reject')
}

/**
 * Reads exactly one frame and hands the stream back with any bytes that arrived after the
 * frame still unread: they belong to the tunnel.
 *
 * Those bytes go back into the stream inside the stream's own 'message' dispatch. A reader
 * that puts them back later (libp2p's lpStream does, a microtask on) found the stream
 * closed for reading when the peer's FIN came in the same read as the frame and its data
 * (a short exchange in one round trip): the stream had nothing buffered, so the FIN closed
 * it, and putting the bytes back threw. 2-47% of 1,000 tunnel connections at once were
 * refused (`bad-request`) in the bench. Put back at once, they keep the stream readable,
 * and its 'end' waits until they have been read.
 */
export async function readFrame (stream: Stream, signal: AbortSignal): Promise<Uint8Array> {
  if (signal.aborted) throw new ProtocolError('handshake timed out')
  return await new Promise<Uint8Array>((resolve, reject) => {
    const received = new Uint8ArrayList()
    const finish = (err: Error | undefined, frame?: Uint8Array): void => {
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('end', onEnd)
      stream.removeEventListener('close', onClose)
      signal.removeEventListener('abort', onAbort)
      if (err != null) reject(err)
      else resolve(frame as Uint8Array)
    }
    const onMessage = (evt: StreamMessageEvent): void => {
      received.append(evt.data)
      let parsed: ParsedFrame | undefined
      try {
        parsed = parseFrame(received)
      } catch (err) {
        finish(err as Error)
        return
      }
      if (parsed == null) {
        if (ended()) onEnd()
        return
      }
      stream.removeEventListener('message', onMessage)
      if (parsed.rest.byteLength > 0) stream.unshift(parsed.rest)
      finish(undefined, parsed.frame)
    }
    // 'end' may come before bytes that are still buffered: multistream-select, which read the
    // protocol's name, puts back what it read past it after the peer's FIN.
    const ended = (): boolean => stream.readableEnded && stream.readBufferLength === 0
    const onEnd = (): void => { if (ended()) finish(new ProtocolError('bad frame: the stream ended before the frame did')) }
    const onClose = (): void => { finish(new ProtocolError('bad frame: the stream closed before the frame ended')) }
    const onAbort = (): void => { finish(new ProtocolError('handshake timed out')) }
    stream.addEventListener('message', onMessage)
    stream.addEventListener('end', onEnd)
    stream.addEventListener('close', onClose)
    signal.addEventListener('abort', onAbort)
    onEnd()
  })
}

interface ParsedFrame { frame: Uint8Array, rest: Uint8ArrayList }

/** A whole frame at the start of `bytes` and what follows it; undefined while incomplete. */
function parseFrame (bytes: Uint8ArrayList): ParsedFrame | undefined {
  // The length is a varint of at most two bytes: MAX_FRAME_BYTES (4096) is below 2^14.
  let length = 0
  let prefix = 0
  for (; prefix < bytes.byteLength; prefix++) {
    const byte = bytes.get(prefix)
    if (prefix === 2) throw new ProtocolError(`bad frame: the length prefix is longer than ${MAX_FRAME_BYTES} allows`)
    length |= (byte & 0x7f) << (7 * prefix)
    if ((byte & 0x80) === 0) {
      prefix++
      if (length > MAX_FRAME_BYTES) throw new ProtocolError(`bad frame: ${length} bytes, at most ${MAX_FRAME_BYTES}`)
      if (bytes.byteLength < prefix + length) return undefined
      return { frame: bytes.subarray(prefix, prefix + length), rest: bytes.sublist(prefix + length) }
    }
  }
  return undefined
}

/** A frame as it goes on the wire: the payload's length as a varint, then the payload. */
export function encodeLengthPrefixed (value: TunnelRequest | TunnelReply): Uint8Array {
  const payload = encodeFrame(value)
  const length = payload.byteLength
  // At most MAX_FRAME_BYTES (4096): a varint of one or two bytes.
  const prefix = length < 0x80 ? [length] : [(length & 0x7f) | 0x80, length >> 7]
  const frame = new Uint8Array(prefix.length + length)
  frame.set(prefix, 0)
  frame.set(payload, prefix.length)
  return frame
}

export async function writeFrame (stream: Stream, value: TunnelRequest | TunnelReply, signal: AbortSignal): Promise<void> {
  if (!stream.send(encodeLengthPrefixed(value))) await stream.onDrain({ signal })
}
