/**
 * The `/libp2p/dcutr` messages (libp2p specs, relay/DCUtR.md), varint-length-prefixed protobuf:
 *
 *   message HolePunch {
 *     enum Type { CONNECT = 100; SYNC = 300; }
 *     required Type type = 1;
 *     repeated bytes ObsAddrs = 2;      // binary multiaddrs
 *     optional uint32 punchgate = 1001; // extension: the sender is Punchgate, roles as docs/protocol.md
 *     optional uint32 attempt = 1002;   // extension: the round number
 *     repeated bytes udp = 1003;        // extension (UDP punching): `/ip4/A/udp/P` candidates of the udx socket
 *     optional uint32 hardnat = 1004;   // extension (UDP punching), the birthday method (holepunch/hard-nat.ts):
 *                                       // 1 offer (A's CONNECT), 2 the sender fans out, 3 the receiver does (B's)
 *   }
 *
 * Standard peers skip fields they do not know (protobuf's rule; js-libp2p, go-libp2p and
 * rust-libp2p all do), so the extensions never break them. Encoded and decoded by hand:
 * two fields do not earn a protobuf runtime.
 *
 * Decoding keeps what wire.ts keeps: plain `/ip4|ip6/A/tcp/P` candidates (a trailing `/p2p/ID`,
 * which js-libp2p appends, is cut off), at most MAX_PUNCH_CANDIDATES of them.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { MAX_DCUTR_ADDRS, MAX_FRAME_BYTES, MAX_PUNCH_CANDIDATES } from '../constants.ts'
import { ProtocolError } from '../errors.ts'
import type { PunchMessage } from './wire.ts'
import { udpHostPort } from '../transport/udx/addr.ts'
import type { HardNatField } from './hard-nat.ts'

const TYPE_CONNECT = 100
const TYPE_SYNC = 300
const FIELD_TYPE = 1
const FIELD_OBS_ADDRS = 2
const FIELD_PUNCHGATE = 1001
const FIELD_ATTEMPT = 1002
const FIELD_UDP = 1003
const FIELD_HARDNAT = 1004
const HARDNAT_CODES: Record<HardNatField, number> = { offer: 1, 'sender-fans-out': 2, 'receiver-fans-out': 3 }
const HARDNAT_FIELDS = new Map(Object.entries(HARDNAT_CODES).map(([k, v]) => [v, k as HardNatField]))
/** The extension's version: what `punchgate` holds. */
export const PUNCHGATE_EXTENSION = 1

const VARINT = 0
const FIXED64 = 1
const BYTES = 2
const FIXED32 = 5

function pushVarint (out: number[], value: number): void {
  let v = value
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80)
    v = Math.floor(v / 128)
  }
  out.push(v)
}

export function encodeHolePunch (message: PunchMessage): Uint8Array {
  const out: number[] = []
  pushVarint(out, (FIELD_TYPE << 3) | VARINT)
  pushVarint(out, message.type === 'connect' ? TYPE_CONNECT : TYPE_SYNC)
  if (message.type === 'connect') {
    for (const addr of message.addrs) {
      const bytes = multiaddr(addr).bytes
      pushVarint(out, (FIELD_OBS_ADDRS << 3) | BYTES)
      pushVarint(out, bytes.byteLength)
      out.push(...bytes)
    }
    for (const addr of message.udp ?? []) {
      const bytes = multiaddr(addr).bytes
      pushVarint(out, (FIELD_UDP << 3) | BYTES)
      pushVarint(out, bytes.byteLength)
      out.push(...bytes)
    }
    if (message.attempt != null) {
      pushVarint(out, (FIELD_ATTEMPT << 3) | VARINT)
      pushVarint(out, message.attempt)
    }
    if (message.hardNat != null) {
      pushVarint(out, (FIELD_HARDNAT << 3) | VARINT)
      pushVarint(out, HARDNAT_CODES[message.hardNat])
    }
  }
  // Every message says who sent it: a standard peer's never carry this field.
  pushVarint(out, (FIELD_PUNCHGATE << 3) | VARINT)
  pushVarint(out, PUNCHGATE_EXTENSION)
  return Uint8Array.from(out)
}

class Reader {
  pos = 0
  private readonly bytes: Uint8Array

  constructor (bytes: Uint8Array) {
    this.bytes = bytes
  }

  get done (): boolean {
    return this.pos >= this.bytes.byteLength
  }

  varint (): number {
    let value = 0
    for (let shift = 0; shift < 64; shift += 7) {
      if (this.pos >= this.bytes.byteLength) throw new ProtocolError('DCUtR message ends inside a varint')
      const byte = this.bytes[this.pos++] as number
      // Values past 2^53 are garbage to us anyway; keep reading so the position stays right.
      if (shift < 53) value += (byte & 0x7f) * 2 ** shift
      if ((byte & 0x80) === 0) return value
    }
    throw new ProtocolError('DCUtR varint too long')
  }

  take (length: number): Uint8Array {
    if (length > this.bytes.byteLength - this.pos) throw new ProtocolError('DCUtR field runs past the message')
    const slice = this.bytes.subarray(this.pos, this.pos + length)
    this.pos += length
    return slice
  }

  skip (wireType: number): void {
    if (wireType === VARINT) this.varint()
    else if (wireType === FIXED64) this.take(8)
    else if (wireType === BYTES) this.take(this.varint())
    else if (wireType === FIXED32) this.take(4)
    else throw new ProtocolError(`DCUtR message has wire type ${wireType}`)
  }
}

/** `/ipX/A/tcp/P` from a candidate's bytes, with a trailing `/p2p/ID` cut off; undefined for anything else. */
function tcpCandidate (bytes: Uint8Array): string | undefined {
  try {
    const components = multiaddr(bytes).getComponents()
    const [ip, port, ...rest] = components
    if (ip == null || port == null || (ip.name !== 'ip4' && ip.name !== 'ip6') || port.name !== 'tcp') return undefined
    if (rest.length > 1 || (rest.length === 1 && rest[0]?.name !== 'p2p')) return undefined
    return `/${ip.name}/${ip.value}/tcp/${port.value}`
  } catch {
    return undefined
  }
}

/** `/ip4/A/udp/P` from a UDP candidate's bytes; undefined for anything else. */
function udpCandidateOf (bytes: Uint8Array): string | undefined {
  try {
    const addr = multiaddr(bytes).toString()
    return udpHostPort(addr) != null ? addr : undefined
  } catch {
    return undefined
  }
}

/** Parses one HolePunch message (the frame without its length prefix). */
export function decodeHolePunch (bytes: Uint8Array): PunchMessage {
  if (bytes.byteLength > MAX_FRAME_BYTES) throw new ProtocolError('DCUtR message too large')
  const reader = new Reader(bytes)
  let type: number | undefined
  let punchgate: number | undefined
  let attempt: number | undefined
  let hardNat: HardNatField | undefined
  let seen = 0
  const addrs: string[] = []
  const udp: string[] = []
  let udpSeen = 0
  while (!reader.done) {
    const tag = reader.varint()
    const field = Math.floor(tag / 8)
    const wireType = tag % 8
    if (field === FIELD_TYPE && wireType === VARINT) type = reader.varint()
    else if (field === FIELD_OBS_ADDRS && wireType === BYTES) {
      const value = reader.take(reader.varint())
      if (seen++ >= MAX_DCUTR_ADDRS || addrs.length >= MAX_PUNCH_CANDIDATES) continue
      const addr = tcpCandidate(value)
      if (addr != null && !addrs.includes(addr)) addrs.push(addr)
    } else if (field === FIELD_UDP && wireType === BYTES) {
      const value = reader.take(reader.varint())
      if (udpSeen++ >= MAX_DCUTR_ADDRS || udp.length >= MAX_PUNCH_CANDIDATES) continue
      const addr = udpCandidateOf(value)
      if (addr != null && !udp.includes(addr)) udp.push(addr)
    } else if (field === FIELD_PUNCHGATE && wireType === VARINT) punchgate = reader.varint()
    else if (field === FIELD_ATTEMPT && wireType === VARINT) attempt = reader.varint()
    else if (field === FIELD_HARDNAT && wireType === VARINT) hardNat = HARDNAT_FIELDS.get(reader.varint())
    else reader.skip(wireType)
  }
  const fromPunchgate = punchgate != null && punchgate >= PUNCHGATE_EXTENSION ? { punchgate: true } : {}
  if (type === TYPE_SYNC) return { type: 'sync', ...fromPunchgate }
  if (type === TYPE_CONNECT) {
    const round = attempt != null && attempt > 0 && Number.isSafeInteger(attempt) ? { attempt } : {}
    return { type: 'connect', addrs, ...(udp.length > 0 ? { udp } : {}), ...round, ...(hardNat != null ? { hardNat } : {}), ...fromPunchgate }
  }
  throw new ProtocolError(type == null ? 'DCUtR message has no type' : `DCUtR message type ${type} is neither CONNECT nor SYNC`)
}
