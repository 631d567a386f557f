/**
 * The `/punchgate/punch/1.0.0` messages (docs/protocol.md): varint-length-prefixed JSON.
 *   initiator -> responder  { type: 'connect', addrs, udp? }   its candidate addresses
 *   responder -> initiator  { type: 'connect', addrs, udp? }   its own
 *   `udp` (with UDP punching): plain `/ip4/A/udp/P` candidates of its udx socket; a peer
 *   without UDP punching ignores the field
 *   initiator -> responder  { type: 'sync' }             the responder dials at once,
 *                                                        the initiator half an RTT later
 */
import { multiaddr } from '@multiformats/multiaddr'
import { MAX_FRAME_BYTES, MAX_PUNCH_CANDIDATES } from '../constants.ts'
import { ProtocolError } from '../errors.ts'
import { udpHostPort } from '../transport/udx/addr.ts'
import type { HardNatField } from './hard-nat.ts'

/**
 * One message of a round, on either wire. `punchgate`: the sender said it is Punchgate
 * (a DCUtR extension field; every `/punchgate/punch/1.0.0` peer is), so the round's roles
 * follow docs/protocol.md, not only the DCUtR spec.
 */
export type PunchMessage =
  | { type: 'connect', addrs: string[], udp?: string[], attempt?: number, punchgate?: boolean, hardNat?: HardNatField }
  | { type: 'sync', punchgate?: boolean }

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

export function encodePunch (message: PunchMessage): Uint8Array {
  // The birthday method rides only on DCUtR (hard-nat.ts): this older wire never carries it.
  const { hardNat, ...json } = message as PunchMessage & { hardNat?: HardNatField }
  return encoder.encode(JSON.stringify(json))
}

function isTcpCandidate (addr: string): boolean {
  try {
    const names = multiaddr(addr).getComponents().map(c => c.name)
    return names.length === 2 && (names[0] === 'ip4' || names[0] === 'ip6') && names[1] === 'tcp'
  } catch {
    return false
  }
}

/** Parses one message; only plain `/ip4|ip6/.../tcp/...` candidates are kept, at most a few. */
export function decodePunch (bytes: Uint8Array): PunchMessage {
  if (bytes.byteLength > MAX_FRAME_BYTES) throw new ProtocolError('punch frame too large')
  let value: unknown
  try {
    value = JSON.parse(decoder.decode(bytes))
  } catch {
    throw new ProtocolError('punch frame is not UTF-8 JSON')
  }
  const obj = value as Record<string, unknown> | null
  if (obj?.type === 'sync') return { type: 'sync' }
  if (obj?.type === 'connect' && Array.isArray(obj.addrs)) {
    const addrs = obj.addrs.filter((a): a is string => typeof a === 'string' && isTcpCandidate(a))
    const attempt = typeof obj.attempt === 'number' && Number.isInteger(obj.attempt) && obj.attempt > 0 ? obj.attempt : undefined
    const udp = Array.isArray(obj.udp) ? obj.udp.filter((a): a is string => typeof a === 'string' && udpHostPort(a) != null).slice(0, MAX_PUNCH_CANDIDATES) : []
    return {
      type: 'connect',
      addrs: addrs.slice(0, MAX_PUNCH_CANDIDATES),
      ...(udp.length > 0 ? { udp } : {}),
      ...(attempt != null ? { attempt } : {})
    }
  }
  throw new ProtocolError('punch frame is neither connect nor sync')
}
