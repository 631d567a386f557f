/**
 * The `/punchgate/tunnel/1.0.0` handshake (docs/protocol.md): one varint-length-
 * prefixed JSON request from the client, one such reply from the server, then raw
 * bytes. Frames are bounded in size and in time; anything malformed is a ProtocolError.
 */
import { isIP } from 'node:net'
import { lpStream } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
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
 * Reads exactly one frame and hands the stream back with any bytes that arrived
 * after the frame still unread: they belong to the tunnel.
 */
export async function readFrame (stream: Stream, signal: AbortSignal): Promise<Uint8Array> {
  const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
  try {
    return (await lp.read({ signal })).subarray()
  } catch (err) {
    if (signal.aborted) throw new ProtocolError('handshake timed out')
    throw new ProtocolError(`bad frame: ${(err as Error).message}`)
  } finally {
    lp.unwrap()
  }
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
