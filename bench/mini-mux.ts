/**
 * The bench floors' minimal stream mux (bench/floor.ts over TLS, bench/floor-libp2p.ts over
 * one libp2p stream): frames of type (1 byte: open, data, end), stream id (4) and length (4).
 * No flow control and no resets: the least multiplexing costs, for every step but the bulk
 * ones. Each end takes the carrier's chunks through the reader it returns and writes frames
 * with `send`.
 */
import type { Socket } from 'node:net'

const OPEN = 0
const DATA = 1
const END = 2

type Send = (frame: Buffer) => void
type Reader = (chunk: Uint8Array) => void

function frame (type: number, id: number, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const out = Buffer.allocUnsafe(9 + payload.byteLength)
  out.writeUInt8(type, 0)
  out.writeUInt32BE(id, 1)
  out.writeUInt32BE(payload.byteLength, 5)
  out.set(payload, 9)
  return out
}

/** Calls `onFrame` for each whole frame in the chunks fed to it. */
function frameReader (onFrame: (type: number, id: number, payload: Buffer) => void): Reader {
  let buffered: Buffer = Buffer.alloc(0)
  return chunk => {
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    buffered = buffered.byteLength === 0 ? bytes : Buffer.concat([buffered, bytes])
    while (buffered.byteLength >= 9) {
      const length = buffered.readUInt32BE(5)
      if (buffered.byteLength < 9 + length) break
      onFrame(buffered.readUInt8(0), buffered.readUInt32BE(1), buffered.subarray(9, 9 + length))
      buffered = buffered.subarray(9 + length)
    }
  }
}

/** Frames one local socket's bytes and end as stream `id`. */
function carry (socket: Socket, id: number, send: Send, streams: Map<number, Socket>): void {
  socket.setNoDelay(true)
  streams.set(id, socket)
  socket.on('data', (chunk: Buffer) => send(frame(DATA, id, chunk)))
  socket.on('end', () => send(frame(END, id)))
  socket.on('close', () => streams.delete(id))
  socket.on('error', () => socket.destroy())
}

/** The provider's end: each opened stream becomes a connection `connectTarget` makes. */
export function muxProvider (send: Send, connectTarget: () => Socket): Reader {
  const streams = new Map<number, Socket>()
  return frameReader((type, id, payload) => {
    if (type === OPEN) carry(connectTarget(), id, send, streams)
    else if (type === DATA) streams.get(id)?.write(payload)
    else streams.get(id)?.end()
  })
}

/** The consumer's end: `accept` makes a local connection a stream; `read` takes the carrier's chunks. */
export function muxConsumer (send: Send): { read: Reader, accept: (socket: Socket) => void } {
  const streams = new Map<number, Socket>()
  let nextId = 0
  return {
    read: frameReader((type, id, payload) => {
      if (type === DATA) streams.get(id)?.write(payload)
      else if (type === END) streams.get(id)?.end()
    }),
    accept: socket => {
      const id = nextId++
      send(frame(OPEN, id))
      carry(socket, id, send, streams)
    }
  }
}
