#!/usr/bin/env node
/**
 * The Node floor (docs/performance.md, issue 21): the least a Node tunnel of Punchgate's
 * shape can cost, with none of libp2p. `bench/run.ts --only ssh,direct,floor-tcp,floor-tls`.
 *
 *   node bench/floor.ts forward TARGET_PORT            a plain TCP forwarder (one process)
 *   node bench/floor.ts delay TARGET_PORT MS           a forwarder that holds every chunk MS ms each way
 *   node bench/floor.ts tls-provider TARGET_PORT DIR   TLS 1.3 server: each connection to the target
 *   node bench/floor.ts tls-consumer PROVIDER_PORT DIR local TCP port: each connection a new TLS one
 *   node bench/floor.ts mux-provider TARGET_PORT DIR   TLS 1.3 server: streams of one connection to the target
 *   node bench/floor.ts mux-consumer PROVIDER_PORT DIR local TCP port: each connection a stream on one TLS one
 *
 * The mux is the least that multiplexing costs (bench/mini-mux.ts): no flow control, so
 * no throughput runs.
 * Each prints `listening PORT` once it accepts. DIR holds key.pem and cert.pem (a throwaway
 * self-signed P-256 certificate, which the consumer pins).
 */
import { createServer, connect, type Socket } from 'node:net'
import { connect as tlsConnect, createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { muxConsumer, muxProvider } from './mini-mux.ts'
import { listenOnLoopback } from './listening.ts'

const [mode, port, third] = process.argv.slice(2)
// The third argument: the TLS modes' certificate directory, or delay's milliseconds each way.
const dir = third
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

const options = { allowHalfOpen: true }

/** The target, which forward, delay and the providers connect each connection onward to. */
const toTarget = (): Socket => connect({ ...options, port: Number(port), host: LOOPBACK })

/** The providers' TLS 1.3 server, with the throwaway key in `dir`. */
const tlsServer = (dir: string, onSocket: (tls: TLSSocket) => void): TlsServer =>
  createTlsServer({ ...options, key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')), minVersion: 'TLSv1.3' }, onSocket)

/** A TLS 1.3 connection to the provider, pinned to its certificate. */
const toProvider = (ca: Buffer): TLSSocket => tlsConnect({ ...options, port: Number(port), host: LOOPBACK, ca, servername: 'floor', minVersion: 'TLSv1.3' })

if (mode === 'forward') {
  listenOnLoopback(createServer(options, socket => { pipeBoth(socket, toTarget()) }))
} else if (mode === 'delay' && third != null) {
  // A path with a round trip of 2 x MS: every chunk, and each end's FIN, MS ms late. No
  // flow control (a slow reader's bytes pile up here): for connection steps, not bulk ones.
  const ms = Number(third)
  const late = (from: Socket, to: Socket): void => {
    from.on('data', chunk => setTimeout(() => { if (!to.destroyed) to.write(chunk) }, ms))
    from.on('end', () => setTimeout(() => { if (!to.destroyed) to.end() }, ms))
    from.on('error', () => to.destroy())
    from.on('close', () => setTimeout(() => to.destroy(), ms))
  }
  listenOnLoopback(createServer(options, socket => {
    const far = toTarget()
    socket.setNoDelay(true)
    far.setNoDelay(true)
    late(socket, far)
    late(far, socket)
  }))
} else if (mode === 'tls-provider' && dir != null) {
  listenOnLoopback(tlsServer(dir, socket => { pipeBoth(socket, toTarget()) }))
} else if (mode === 'tls-consumer' && dir != null) {
  const cert = readFileSync(join(dir, 'cert.pem'))
  listenOnLoopback(createServer(options, socket => {
    pipeBoth(socket, toProvider(cert))
  }))
} else if (mode === 'mux-provider' && dir != null) {
  listenOnLoopback(tlsServer(dir, tls => {
    tls.setNoDelay(true)
    tls.on('data', muxProvider(frame => tls.write(frame), toTarget))
  }))
} else if (mode === 'mux-consumer' && dir != null) {
  const tls = toProvider(readFileSync(join(dir, 'cert.pem')))
  tls.setNoDelay(true)
  const mux = muxConsumer(frame => tls.write(frame))
  tls.on('data', mux.read)
  tls.once('secureConnect', () => { listenOnLoopback(createServer(options, mux.accept)) })
} else {
  console.error('usage: node bench/floor.ts forward TARGET_PORT | delay TARGET_PORT MS | tls-provider|mux-provider TARGET_PORT DIR | tls-consumer|mux-consumer PROVIDER_PORT DIR')
  process.exit(2)
}
