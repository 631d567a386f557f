/**
 * `/punchgate/reach/1.0.0`'s frames (docs/protocol.md): one varint-length-prefixed JSON
 * frame each way, at most MAX_FRAME_BYTES.
 *
 *   asker -> public node   { "ports": [4001] }                       1 or 2 TCP listen ports
 *   public node -> asker   { "ip": "11.0.0.5", "reachable": [4001], "unreachable": [] }
 *                       or { "error": "too-soon" | "busy" | "not-direct" | "bad-request" }
 */
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import { MAX_FRAME_BYTES, REACH_MAX_PORTS } from '../constants.ts'
import { ProtocolError } from '../errors.ts'

/** What a public node found: the IP it dialed (the asker's, as it sees it) and which ports connected. */
export interface ReachAnswer {
  ip: string
  reachable: number[]
  unreachable: number[]
}

/** Why a public node did not probe: asked again within the interval, too many dials in flight, a relayed asker, a malformed request. */
export type ReachRefusal = 'too-soon' | 'busy' | 'not-direct' | 'bad-request'

const REFUSALS: readonly ReachRefusal[] = ['too-soon', 'busy', 'not-direct', 'bad-request']

export function isPort (value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535
}

/** The ports of a request: 1 to REACH_MAX_PORTS distinct ports (1-65535); anything else is undefined. */
export function decodeRequest (frame: Uint8Array): number[] | undefined {
  const ports = (parse(frame) as { ports?: unknown } | undefined)?.ports
  if (!Array.isArray(ports) || ports.length < 1 || ports.length > REACH_MAX_PORTS || !ports.every(isPort)) return undefined
  return new Set(ports).size === ports.length ? ports : undefined
}

export function encodeRequest (ports: number[]): Uint8Array {
  return encode({ ports })
}

export function encodeAnswer (answer: ReachAnswer | { error: ReachRefusal }): Uint8Array {
  return encode(answer)
}

/**
 * A public node's answer: the result, or the refusal's reason. Ports we did not ask for are
 * dropped; a malformed answer throws ProtocolError.
 */
export function decodeAnswer (frame: Uint8Array, asked: number[]): ReachAnswer | { error: ReachRefusal } {
  const value = parse(frame) as Record<string, unknown> | undefined
  if (value == null) throw new ProtocolError('reach: the answer is not a JSON object')
  if (typeof value.error === 'string') {
    return { error: REFUSALS.includes(value.error as ReachRefusal) ? value.error as ReachRefusal : 'bad-request' }
  }
  const { ip, reachable, unreachable } = value
  if (typeof ip !== 'string' || ip.length > 64 || !Array.isArray(reachable) || !Array.isArray(unreachable)) {
    throw new ProtocolError('reach: the answer has no ip, reachable and unreachable')
  }
  const ours = (list: unknown[]): number[] => list.filter((p): p is number => isPort(p) && asked.includes(p))
  return { ip, reachable: ours(reachable), unreachable: ours(unreachable) }
}

/** One stream's frames, both ways: one reader for the stream's life, so no byte read ahead is lost. */
export function frames (stream: Stream): LengthPrefixedStream<Stream> {
  return lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
}

function encode (value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value))
}

function parse (frame: Uint8Array): unknown {
  try {
    const value: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(frame))
    return typeof value === 'object' && value != null && !Array.isArray(value) ? value : undefined
  } catch {
    return undefined
  }
}
