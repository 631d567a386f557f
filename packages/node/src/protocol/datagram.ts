/**
 * UDP datagrams on a libp2p stream (docs/protocol.md, `/punchgate/udp/1.0.0`): after the
 * handshake, each datagram is a 2-byte big-endian length and that many bytes, so every
 * datagram arrives whole and on its own however the stream splits or joins its chunks.
 * A congested stream drops datagrams instead of queueing them without bound, as a
 * router would: UDP applications expect loss, not unbounded delay.
 */
import type { Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { ProtocolError } from '../errors.ts'

/** The largest UDP payload over IPv4 (65,535 - 8 UDP header - 20 IP header). */
export const MAX_DATAGRAM_BYTES = 65_507

const HEADER_BYTES = 2

/**
 * Unsent bytes a session's stream may hold before further datagrams are dropped: a burst
 * of ~180 full-size WireGuard packets, and at most a few ms of delay at tunnel speeds.
 */
export const MAX_QUEUED_DATAGRAM_BYTES = 256 * 1024

export function datagramHeader (length: number): Uint8Array {
  if (length > MAX_DATAGRAM_BYTES) {
    throw new ProtocolError(`datagram of ${length} bytes exceeds ${MAX_DATAGRAM_BYTES}`)
  }
  return Uint8Array.of(length >> 8, length & 0xff)
}

/** Reassembles datagrams from stream chunks of any size. */
export class DatagramDecoder {
  private readonly buffer = new Uint8ArrayList()

  /** Returns the datagrams completed by `chunk` (possibly none); throws ProtocolError on an oversized length. */
  push (chunk: Uint8Array | Uint8ArrayList): Uint8Array[] {
    this.buffer.append(chunk)
    const out: Uint8Array[] = []
    while (this.buffer.byteLength >= HEADER_BYTES) {
      const length = this.buffer.get(0) << 8 | this.buffer.get(1)
      if (length > MAX_DATAGRAM_BYTES) {
        throw new ProtocolError(`datagram length ${length} exceeds ${MAX_DATAGRAM_BYTES}`)
      }
      if (this.buffer.byteLength < HEADER_BYTES + length) break
      out.push(this.buffer.subarray(HEADER_BYTES, HEADER_BYTES + length))
      this.buffer.consume(HEADER_BYTES + length)
    }
    return out
  }
}

export interface DatagramCounts {
  datagramsIn: number
  datagramsOut: number
  bytesIn: number
  bytesOut: number
  /** Datagrams dropped because the stream was congested or closed. */
  dropped: number
}

export interface DatagramChannelInit {
  onDatagram: (datagram: Uint8Array) => void
  /** Called once, when the stream is closed either way; `error` when it was reset or broke the framing. */
  onClose: (error?: Error) => void
}

/** A stream carrying framed datagrams both ways. */
export class DatagramChannel {
  readonly counts: DatagramCounts = { datagramsIn: 0, datagramsOut: 0, bytesIn: 0, bytesOut: 0, dropped: 0 }
  private readonly stream: Stream
  private closed = false

  constructor (stream: Stream, init: DatagramChannelInit) {
    this.stream = stream
    const decoder = new DatagramDecoder()
    stream.addEventListener('message', (evt: StreamMessageEvent) => {
      let datagrams: Uint8Array[]
      try {
        datagrams = decoder.push(evt.data)
      } catch (err) {
        this.abort(err as Error)
        return
      }
      for (const datagram of datagrams) {
        this.counts.datagramsIn++
        this.counts.bytesIn += datagram.byteLength
        init.onDatagram(datagram)
      }
    })
    // The peer will send no more: the session is over, so close our side too.
    stream.addEventListener('remoteCloseWrite', () => this.close())
    stream.addEventListener('close', (evt: StreamCloseEvent) => {
      this.closed = true
      init.onClose(evt.error)
    }, { once: true })
  }

  /** Sends one datagram; returns false when it was dropped instead. */
  send (datagram: Uint8Array): boolean {
    const congested = this.stream.writeBufferLength >= MAX_QUEUED_DATAGRAM_BYTES
    if (this.closed || congested || this.stream.status !== 'open' || this.stream.writeStatus !== 'writable') {
      this.counts.dropped++
      return false
    }
    this.counts.datagramsOut++
    this.counts.bytesOut += datagram.byteLength
    try {
      // send() returning false only means "wait for drain" (a QUIC stream says so after
      // every write): the datagram is queued, and the byte bound above decides drops.
      this.stream.send(new Uint8ArrayList(datagramHeader(datagram.byteLength), datagram))
    } catch (err) {
      this.abort(err as Error)
    }
    return true
  }

  /** Ends the session cleanly: flushes what was sent, then FIN. */
  close (): void {
    if (this.stream.writeStatus === 'writable') {
      this.stream.close().catch((err: Error) => this.abort(err))
    }
  }

  abort (err: Error): void {
    if (this.stream.status === 'open' || this.stream.status === 'closing') this.stream.abort(err)
  }
}
