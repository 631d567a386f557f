/**
 * A socket whose reads land in a buffer of its own instead of a fresh allocation per read.
 *
 * By default Node allocates a new 64 KiB buffer for every read from a socket; for a relay
 * copying a tunnel at hundreds of MB/s those buffers are most of its work: the allocations,
 * the collector freeing them, and the kernel's page faults as malloc gives memory back and
 * takes it again. net.Socket's `onread` option reads into a buffer the caller owns, but
 * Node offers it only to sockets it creates, not to those a server accepts. So the accepted
 * socket, paused before its first read (`pauseOnConnect`), hands its handle to a new Socket
 * made with `onread`: the handoff goes through `_handle`, where every Node socket keeps its
 * handle (not part of Node's documented API; the splicer's tests cover it).
 */
import { Socket } from 'node:net'

export class HandoffError extends Error {
  constructor () {
    super('the accepted socket has no handle to hand off')
    this.name = 'HandoffError'
  }
}

/**
 * Takes over `accepted` (from a server with `pauseOnConnect`): the returned socket reads
 * into `nextBuffer()`'s buffer, asked for once at the start and again after every read, so
 * the caller can switch buffers. `onRead` gets a view of the bytes read; the view is valid
 * until the socket reads again, and returning false pauses it (`resume()` goes on). The
 * accepted socket is closed without closing the connection.
 */
export function withOwnReadBuffer (accepted: Socket, nextBuffer: () => Buffer, onRead: (bytes: Buffer) => boolean): Socket {
  const holder = accepted as unknown as { _handle: unknown }
  const handle = holder._handle
  if (handle == null) throw new HandoffError()
  holder._handle = null
  accepted.destroy()
  const options = {
    handle,
    allowHalfOpen: true,
    readable: true,
    writable: true,
    onread: { buffer: nextBuffer, callback: (read: number, buffer: Buffer) => onRead(buffer.subarray(0, read)) }
  }
  // `handle` is not in the typed options (Node's own server passes it); `onread.buffer` may be a function.
  return new Socket(options as unknown as ConstructorParameters<typeof Socket>[0])
}
