/**
 * Joins a local TCP socket and a libp2p stream: bytes both ways, backpressure both
 * ways, each direction's FIN forwarded on its own, and one teardown for both ends.
 */
import type { Socket } from 'node:net'
import type { Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'

export interface PipeResult {
  /** Bytes written to the local socket (from the remote). */
  bytesIn: number
  /** Bytes sent to the remote (from the local socket). */
  bytesOut: number
  /** Set when either end failed rather than closed cleanly. */
  error?: Error
}

/**
 * Yamux grows a stream's receive window well above the 4 MiB default read buffer; a
 * paused stream (slow local reader) must never be reset for holding what the window allowed.
 */
const STREAM_READ_BUFFER_BYTES = 32 * 1024 * 1024

export async function pipeSocketStream (socket: Socket, stream: Stream): Promise<PipeResult> {
  const result: PipeResult = { bytesIn: 0, bytesOut: 0 }
  stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, STREAM_READ_BUFFER_BYTES)

  return new Promise(resolve => {
    let socketClosed = false
    let streamClosed = false
    const finish = (): void => {
      if (socketClosed && streamClosed) resolve(result)
    }
    const fail = (err: Error): void => {
      result.error ??= err
      // RST, not FIN: a clean EOF would tell the local app a broken transfer was complete.
      // Unix sockets (the control socket) have no RST and throw: closing is all they can do.
      if (!socket.destroyed) {
        if (socket.remoteAddress != null) socket.resetAndDestroy()
        else socket.destroy()
      }
      if (stream.status === 'open' || stream.status === 'closing') stream.abort(err)
    }

    // local -> remote
    socket.on('data', (chunk: Buffer) => {
      result.bytesOut += chunk.byteLength
      try {
        if (!stream.send(chunk)) {
          socket.pause()
          stream.onDrain().then(() => socket.resume(), (err: Error) => fail(err))
        }
      } catch (err) {
        fail(err as Error)
      }
    })
    let localEnded = false
    let remoteEnded = false
    socket.on('end', () => {
      // The local side finished writing: forward the FIN, keep reading the remote.
      localEnded = true
      stream.close().catch((err: Error) => fail(err))
    })
    socket.on('error', err => fail(err))
    socket.on('close', () => {
      socketClosed = true
      // Closed before both FINs were exchanged: the local app reset or vanished,
      // so the remote must learn that too rather than wait for bytes that never come.
      if (!streamClosed && !(localEnded && remoteEnded)) fail(new Error('local connection closed'))
      finish()
    })

    // remote -> local
    stream.addEventListener('message', (evt: StreamMessageEvent) => {
      const data = evt.data
      let writable = true
      if (data instanceof Uint8Array) {
        result.bytesIn += data.byteLength
        writable = socket.write(data)
      } else {
        for (const buf of data) {
          result.bytesIn += buf.byteLength
          writable = socket.write(buf)
        }
      }
      if (!writable && stream.readStatus === 'readable') {
        stream.pause()
        socket.once('drain', () => {
          if (stream.readStatus === 'paused') stream.resume()
        })
      }
    })
    const onEnd = (): void => {
      // 'end' fires only once the read buffer is empty: no byte is left behind.
      if (stream.status === 'aborted' || stream.status === 'reset') return
      remoteEnded = true
      if (!socket.destroyed) socket.end()
    }
    if (stream.readableEnded) onEnd()
    else stream.addEventListener('end', onEnd, { once: true })
    stream.addEventListener('close', (evt: StreamCloseEvent) => {
      streamClosed = true
      if (evt.error != null) fail(evt.error)
      finish()
    }, { once: true })
    if (stream.status !== 'open' && stream.status !== 'closing') {
      streamClosed = true
      fail(new Error(`stream ${stream.status}`))
    }
  })
}
