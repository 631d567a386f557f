/**
 * The bench's target service, run as its own process so that it never competes with
 * the load generator's event loop. One port, two modes chosen by the first byte:
 *   'E'  echo every following byte; half-close when the client does.
 *   'S'  sink: count every following byte until the client's FIN, then reply
 *        with the count in decimal and a newline, and close.
 * Usage: node bench/target.ts [PORT] ; prints `listening PORT` when ready.
 */
import { createServer, type Socket } from 'node:net'
import { listenOnLoopback } from './listening.ts'

export const MODE_ECHO = 0x45
export const MODE_SINK = 0x53

function serve (socket: Socket): void {
  socket.setNoDelay(true)
  socket.on('error', () => socket.destroy())
  let started = false
  // A port probe connects and leaves without a mode byte.
  socket.once('end', () => { if (!started) socket.destroy() })
  socket.once('readable', function first () {
    const head: Buffer | null = socket.read(1)
    if (head == null) { socket.once('readable', first); return }
    started = true
    if (head[0] === MODE_ECHO) {
      socket.pipe(socket)
      return
    }
    if (head[0] !== MODE_SINK) { socket.destroy(); return }
    let count = 0
    socket.on('data', (chunk: Buffer) => { count += chunk.byteLength })
    socket.resume()
    socket.on('end', () => socket.end(`${count}\n`))
  })
}

if (import.meta.main) {
  const server = createServer({ allowHalfOpen: true, noDelay: true }, serve)
  listenOnLoopback(server, Number(process.argv[2] ?? 0))
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0))
}
