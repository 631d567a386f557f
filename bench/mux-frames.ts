/**
 * The bench floors' minimal stream mux (bench/floor.ts over TLS, bench/floor-libp2p.ts over
 * one libp2p stream): frames of type (1 byte: open, data, end), stream id (4) and length (4).
 * No flow control and no resets: the least multiplexing costs, for every step but the bulk ones.
 */
export const OPEN = 0
export const DATA = 1
export const END = 2

export function frame (type: number, id: number, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const out = Buffer.allocUnsafe(9 + payload.byteLength)
  out.writeUInt8(type, 0)
  out.writeUInt32BE(id, 1)
  out.writeUInt32BE(payload.byteLength, 5)
  out.set(payload, 9)
  return out
}

/** A reader to feed every chunk of the carrying connection; calls `onFrame` for each whole frame. */
export function frameReader (onFrame: (type: number, id: number, payload: Buffer) => void): (chunk: Uint8Array) => void {
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
