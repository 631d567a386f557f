/**
 * The datagrams the UDP transport sends outside udx streams, on the same socket
 * (docs/protocol.md, "UDP punching"). udx's own packets start with 0xff; ours with `PGUD`
 * and a version, so the two never mix. Every datagram is small and a reply is never larger
 * than what it answers, so nothing here amplifies.
 *
 *   SYN      dialer -> listener   nonce u32, dialer's stream id u32   (resent until answered)
 *   SYN-ACK  listener -> dialer   nonce u32, listener's stream id u32 (once per SYN, capped)
 *   PROBE    either way           round token (8 bytes): opens our NAT towards the peer; never answered
 *   OBSERVE  node -> observer     token (16 bytes) the observer handed out over an authenticated
 *                                 stream (holepunch/udp-observe.ts); answered on that stream, never over UDP
 */
const MAGIC = [0x50, 0x47, 0x55, 0x44] // 'PGUD'
const VERSION = 1
const HEADER = MAGIC.length + 2

export type Datagram =
  | { type: 'syn', nonce: number, streamId: number }
  | { type: 'syn-ack', nonce: number, streamId: number }
  | { type: 'probe', token: Uint8Array }
  | { type: 'observe', token: Uint8Array }

const TYPES = { syn: 1, 'syn-ack': 2, probe: 3, observe: 4 } as const
export const PROBE_TOKEN_BYTES = 8
export const OBSERVE_TOKEN_BYTES = 16

export function encodeDatagram (d: Datagram): Uint8Array {
  const body = d.type === 'syn' || d.type === 'syn-ack' ? 8 : d.token.byteLength
  const bytes = new Uint8Array(HEADER + body)
  bytes.set(MAGIC, 0)
  bytes[4] = VERSION
  bytes[5] = TYPES[d.type]
  const view = new DataView(bytes.buffer)
  if (d.type === 'syn' || d.type === 'syn-ack') {
    view.setUint32(HEADER, d.nonce)
    view.setUint32(HEADER + 4, d.streamId)
  } else {
    bytes.set(d.token, HEADER)
  }
  return bytes
}

/** One of our datagrams, or undefined for anything else (udx packets, strays, garbage). */
export function decodeDatagram (bytes: Uint8Array): Datagram | undefined {
  if (bytes.byteLength < HEADER || MAGIC.some((b, i) => bytes[i] !== b) || bytes[4] !== VERSION) return undefined
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const body = bytes.byteLength - HEADER
  switch (bytes[5]) {
    case TYPES.syn:
    case TYPES['syn-ack']:
      if (body !== 8) return undefined
      return { type: bytes[5] === TYPES.syn ? 'syn' : 'syn-ack', nonce: view.getUint32(HEADER), streamId: view.getUint32(HEADER + 4) }
    case TYPES.probe:
      return body === PROBE_TOKEN_BYTES ? { type: 'probe', token: bytes.slice(HEADER) } : undefined
    case TYPES.observe:
      return body === OBSERVE_TOKEN_BYTES ? { type: 'observe', token: bytes.slice(HEADER) } : undefined
    default:
      return undefined
  }
}
