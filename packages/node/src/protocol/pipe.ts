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

/**
 * Unsent bytes the stream may hold before the local socket stops being read. send()'s
 * return value alone does not bound this: yamux emits 'drain' on every window update,
 * even while the connection below is still saturated, and each one let another chunk in
 * (tens of MB queued, and a queue that is slow to consume: measured in docs/performance.md).
 */
const MAX_UNSENT_BYTES = 256 * 1024

/**
 * Bytes the local socket may hold unwritten before the stream is paused. Node's default
 * (64 KiB) is about one yamux frame, so nearly every message would pause and resume the stream.
 */
const MAX_UNWRITTEN_BYTES = 1024 * 1024

/**
 * Ends a local connection that broke: RST, not FIN, as a clean EOF would tell the local
 * app a broken transfer was complete. Unix sockets (the control socket) have no RST and
 * throw: closing is all they can do. Once end() has started libuv's graceful shutdown, a
 * reset must not be mixed in either: the handle then never finishes closing (and Node
 * spins at exit waiting for it).
 */
export function cutSocket (socket: Socket): void {
  if (socket.destroyed) return
  if (socket.remoteAddress != null && !socket.writableEnded) socket.resetAndDestroy()
  else socket.destroy()
}

export interface PipeOptions {
  /**
   * The stream's first bytes are the server's answer to our request, read by the caller: the
   * local socket is forwarded at once, the stream only once `replied` resolves (a tunnel's
   * client sends its first bytes before the answer, docs/protocol.md). If it rejects, both
   * ends fail with its error.
   */
  replied?: Promise<unknown>
}

export async function pipeSocketStream (socket: Socket, stream: Stream, options: PipeOptions = {}): Promise<PipeResult> {
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
      cutSocket(socket)
      if (stream.status === 'open' || stream.status === 'closing') stream.abort(err)
    }

    // local -> remote
    let reading = true
    const resumeReading = (): void => {
      if (reading || stream.writableNeedsDrain || stream.writeBufferLength >= MAX_UNSENT_BYTES) return
      if (stream.writeStatus !== 'writable' || socket.destroyed) return
      reading = true
      socket.resume()
    }
    socket.on('data', (chunk: Buffer) => {
      result.bytesOut += chunk.byteLength
      try {
        if (!stream.send(chunk) || stream.writeBufferLength >= MAX_UNSENT_BYTES) {
          reading = false
          socket.pause()
        }
      } catch (err) {
        fail(err as Error)
      }
    })
    // The stream's own 'drain' handler queues its send in a microtask: look after it ran.
    stream.addEventListener('drain', () => queueMicrotask(resumeReading))
    stream.addEventListener('idle', resumeReading)
    let localEnded = false
    let remoteEnded = false
    /**
     * Only the local app's FIN closes the stream's write side. Closed without it, the
     * connection below went away: libp2p's muxer then closes its streams without an error
     * (a relayed connection whose circuit was cut, measured in
     * connection-loss.integration.test.ts). Passing that on as a clean end would tell the
     * local app a broken transfer was complete, and leave its unsent bytes hanging.
     */
    const closedUnderneath = (): boolean => stream.status === 'closed' && !localEnded
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
    const readRemote = (): void => {
      // Messages come one TLS record (16 KiB) at a time, several in one go from one read of
      // the connection: they are written to the local socket together, in one system call,
      // when the current tick ends (docs/performance.md).
      stream.addEventListener('message', (evt: StreamMessageEvent) => {
        const data = evt.data
        if (socket.writableCorked === 0) {
          socket.cork()
          process.nextTick(() => socket.uncork())
        }
        if (data instanceof Uint8Array) {
          result.bytesIn += data.byteLength
          socket.write(data)
        } else {
          for (const buf of data) {
            result.bytesIn += buf.byteLength
            socket.write(buf)
          }
        }
        if (!resuming) pauseIfFull()
        if (endPending && stream.readBufferLength === 0) onEnd()
      })
      // resume() hands over what arrived while paused in one go, then tells the muxer to
      // grant the sender more window. Pausing again from inside that hand-over would come
      // first, and the grant after it would cancel it: the sender then runs free while the
      // stream buffers, until it is reset at its read buffer limit (seen in the NAT lab).
      // So the stream is paused again, if need be, only once resume() has returned.
      let resuming = false
      const pauseIfFull = (): void => {
        if (socket.writableLength < MAX_UNWRITTEN_BYTES || stream.readStatus !== 'readable') return
        stream.pause()
        // Above the socket's high-water mark, so write() returned false and 'drain' will come.
        socket.once('drain', () => {
          if (stream.readStatus !== 'paused') return
          resuming = true
          try {
            stream.resume()
          } finally {
            resuming = false
          }
          pauseIfFull()
        })
      }
      // 'end' fires once the read buffer is empty, but a reader that took the first frame
      // (the request or the reply) puts the bytes it read past it back afterwards: when the
      // peer's data and FIN came with the frame, 'end' has already fired and those bytes
      // are still to come (they arrive a timer later). The FIN is passed on after them.
      let endPending = false
      const onEnd = (): void => {
        if (stream.status === 'aborted' || stream.status === 'reset') return
        if (stream.readBufferLength > 0) {
          endPending = true
          return
        }
        endPending = false
        if (closedUnderneath()) {
          fail(new Error('peer connection lost'))
          return
        }
        remoteEnded = true
        if (!socket.destroyed) socket.end()
      }
      if (stream.readableEnded) onEnd()
      else stream.addEventListener('end', onEnd, { once: true })
    }
    if (options.replied == null) readRemote()
    else options.replied.then(readRemote, (err: Error) => fail(err))
    stream.addEventListener('close', (evt: StreamCloseEvent) => {
      streamClosed = true
      if (evt.error != null) fail(evt.error)
      else if (closedUnderneath()) fail(new Error('peer connection lost'))
      finish()
    }, { once: true })
    if (stream.status !== 'open' && stream.status !== 'closing') {
      streamClosed = true
      fail(new Error(`stream ${stream.status}`))
    }
  })
}
