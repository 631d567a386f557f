#!/usr/bin/env node
/**
 * The js-libp2p floor (docs/performance.md, issue 21): the least a tunnel costs on js-libp2p
 * with Punchgate's connection stack (TCP, its socket TLS, yamux with its window, loggers off) and none of
 * Punchgate itself: no services, no tunnel request or answer, no access checks, no events.
 * A stream per local connection, opened with the same optimistic protocol select, joined to
 * the local socket by the tunnel's own pipe (its backpressure and half-close; a plain
 * send-and-drain pipe queues tens of MB and stalls a bulk transfer), and on to the target.
 * `bench/run.ts --only ssh,direct,floor-libp2p`.
 *
 * With `mux-` (`floor-libp2p-mux`): one long-lived libp2p stream, opened at start, carries
 * every local connection as a channel of the floors' minimal mux (bench/mini-mux.ts; no
 * flow control, so no throughput steps): the floor of a mux of Punchgate's own
 * inside one libp2p stream, as `ssh -L` carries its channels in one session.
 *
 *   node bench/floor-libp2p.ts [mux-]provider TARGET_PORT     prints `peer ID` and `listening PORT`
 *   node bench/floor-libp2p.ts [mux-]consumer PROVIDER_PORT PROVIDER_ID   prints `listening PORT`
 */
import { createServer, connect, type Socket } from 'node:net'
import type { Connection, Stream, StreamMessageEvent } from '@libp2p/interface'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@chainsafe/libp2p-yamux'
import { multiaddr } from '@multiformats/multiaddr'
// The bench bundles this file (bench/setups.ts): of the library, only these and what they use are in it.
import { libp2pLogger, pipeSocketStream, socketTls } from '@punchgate/node'
import { muxConsumer, muxProvider } from './mini-mux.ts'
import { listenOnLoopback } from './listening.ts'

const [mode, port, providerId] = process.argv.slice(2)
const LOOPBACK = '127.0.0.1'
const PROTOCOL = '/floor/1.0.0'
const MUX_PROTOCOL = '/floor-mux/1.0.0'

// libp2p's loggers as a daemon has them: off unless DEBUG is set (packages/node/src/libp2p-logger.ts).
const logger = libp2pLogger()

const node = await createLibp2p({
  ...(logger != null ? { logger } : {}),
  addresses: { listen: mode?.endsWith('provider') === true ? [`/ip4/${LOOPBACK}/tcp/0`] : [] },
  transports: [tcp()],
  connectionEncrypters: [socketTls()],
  streamMuxers: [yamux({ maxInboundStreams: 4096, maxOutboundStreams: 4096, streamOptions: { maxStreamWindowSize: 4 * 1024 * 1024 } })]
})

// Exit cleanly on a signal, so that --cpu-prof writes its profile.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0))

if (mode === 'provider') {
  await node.handle(PROTOCOL, (stream) => {
    void pipeSocketStream(connectTarget(), stream)
  }, { maxInboundStreams: 4096 })
  announceProvider()
} else if (mode === 'consumer' && providerId != null) {
  const connection = await dialProvider(providerId)
  listenOnLoopback(createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, socket => {
    connection.newStream(PROTOCOL, { negotiateFully: false, maxOutboundStreams: 4096 }).then(stream => {
      void pipeSocketStream(socket, stream)
      socket.resume()
    }, () => socket.destroy())
  }))
} else if (mode === 'mux-provider') {
  await node.handle(MUX_PROTOCOL, (stream) => {
    onChunks(stream, muxProvider(frame => stream.send(frame), connectTarget))
  })
  announceProvider()
} else if (mode === 'mux-consumer' && providerId != null) {
  const connection = await dialProvider(providerId)
  const stream = await connection.newStream(MUX_PROTOCOL)
  const mux = muxConsumer(frame => stream.send(frame))
  onChunks(stream, mux.read)
  listenOnLoopback(createServer({ allowHalfOpen: true, noDelay: true }, mux.accept))
} else {
  console.error('usage: node bench/floor-libp2p.ts [mux-]provider TARGET_PORT | [mux-]consumer PROVIDER_PORT PROVIDER_ID')
  process.exit(2)
}

/** Every chunk a libp2p stream receives, in order, as one Uint8Array each. */
function onChunks (stream: Stream, read: (chunk: Uint8Array) => void): void {
  stream.addEventListener('message', (evt: StreamMessageEvent) => { read(evt.data.subarray()) })
}

/** The provider's connection onward to the target, one per tunnel connection. */
function connectTarget (): Socket {
  return connect({ port: Number(port), host: LOOPBACK, allowHalfOpen: true, noDelay: true })
}

/** A provider's two lines for the bench: its peer id and its TCP port. */
function announceProvider (): void {
  const listened = /\/tcp\/(\d+)/.exec(node.getMultiaddrs()[0].toString())?.[1]
  console.log(`peer ${node.peerId.toString()}`)
  console.log(`listening ${listened}`)
}

async function dialProvider (id: string): Promise<Connection> {
  return await node.dial(multiaddr(`/ip4/${LOOPBACK}/tcp/${port}/p2p/${id}`))
}
