#!/usr/bin/env node
/**
 * The Node floor (docs/performance.md, issue 21): the least a Node tunnel of Punchgate's
 * shape can cost, with none of libp2p. `bench/run.ts --only ssh,direct,floor-tcp,floor-tls`.
 *
 *   node bench/floor.ts forward TARGET_PORT            a plain TCP forwarder (one process)
 *   node bench/floor.ts tls-provider TARGET_PORT DIR   TLS 1.3 server: each connection to the target
 *   node bench/floor.ts tls-consumer PROVIDER_PORT DIR local TCP port: each connection a new TLS one
 *
 * Each prints `listening PORT` once it accepts. DIR holds key.pem and cert.pem (a throwaway
 * self-signed P-256 certificate, which the consumer pins).
 */
import { createServer, connect, type Socket } from 'node:net'
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

const [mode, port, dir] = process.argv.slice(2)
const LOOPBACK = '127.0.0.1'

/** Both ways, each end's half-close passed on; either side's error ends both. */
function pipeBoth (a: Socket, b: Socket): void {
  a.setNoDelay(true)
  b.setNoDelay(true)
  a.pipe(b)
  b.pipe(a)
  a.on('error', () => b.destroy())
  b.on('error', () => a.destroy())
}

function listening (server: ReturnType<typeof createServer>): void {
  server.listen(0, LOOPBACK, 4096, () => {
    const address = server.address()
    if (address != null && typeof address === 'object') console.log(`listening ${address.port}`)
  })
}

const options = { allowHalfOpen: true }
if (mode === 'forward') {
  listening(createServer(options, socket => { pipeBoth(socket, connect({ ...options, port: Number(port), host: LOOPBACK })) }))
} else if (mode === 'tls-provider' && dir != null) {
  const server = createTlsServer({ ...options, key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')), minVersion: 'TLSv1.3' }, socket => {
    pipeBoth(socket, connect({ ...options, port: Number(port), host: LOOPBACK }))
  })
  listening(server as unknown as ReturnType<typeof createServer>)
} else if (mode === 'tls-consumer' && dir != null) {
  const cert = readFileSync(join(dir, 'cert.pem'))
  listening(createServer(options, socket => {
    const tls = tlsConnect({ ...options, port: Number(port), host: LOOPBACK, ca: cert, servername: 'floor', minVersion: 'TLSv1.3' })
    pipeBoth(socket, tls)
  }))
} else {
  console.error('usage: node bench/floor.ts forward TARGET_PORT | tls-provider TARGET_PORT DIR | tls-consumer PROVIDER_PORT DIR')
  process.exit(2)
}
