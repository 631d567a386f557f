/**
 * How a bench process says it is ready: it listens on loopback and prints `listening PORT`,
 * the line bench/setups.ts's `listeningPort` waits for in the process's log.
 */
import type { Server } from 'node:net'

/** Listens on 127.0.0.1 (`port` 0: any free one) and prints `listening PORT` once it accepts. */
export function listenOnLoopback (server: Server, port = 0): void {
  server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => {
    const address = server.address()
    if (address != null && typeof address === 'object') console.log(`listening ${address.port}`)
  })
}
