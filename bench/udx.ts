#!/usr/bin/env node
/// <reference path="../packages/node/src/transport/udx/udx-native.d.ts" />
/**
 * `node bench/udx.ts [--mib 256] [--repeats 3]`: the UDP carrier's own rate on loopback
 * (docs/nat-traversal.md "UDP punching"), one stream one way, both ends in this process:
 * raw udx-native streams, then Punchgate's udx transport under libp2p's upgrader (TLS and
 * yamux), as a tunnel uses it. What is left between the two is ours to find.
 */
import { parseArgs } from 'node:util'
import { once } from 'node:events'
import Udx from 'udx-native'
import { createLibp2p, type Libp2p } from 'libp2p'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Stream, Transport } from '@libp2p/interface'
import { findUdx, socketTls, udxAddr, udxTransport } from '@punchgate/node'

const { values: flags } = parseArgs({ options: { mib: { type: 'string', default: '256' }, repeats: { type: 'string', default: '3' } } })
const MiB = 1024 * 1024
const bytes = Number(flags.mib) * MiB
const CHUNK = 64 * 1024
const SOCKET_BUFFER_BYTES = 4 * MiB

/** MB/s of `bytes` sent in CHUNK writes, timed until the receiver has counted them all. */
async function timed (send: (chunk: Uint8Array) => boolean, drained: () => Promise<unknown>, received: Promise<void>): Promise<number> {
  const chunk = Buffer.alloc(CHUNK, 7)
  const started = performance.now()
  // `drained` right after a refused write, with no await between: a 'drain' emitted meanwhile would be missed.
  for (let sent = 0; sent < bytes; sent += CHUNK) if (!send(chunk)) await drained()
  await received
  return bytes / 1e6 / ((performance.now() - started) / 1000)
}

async function raw (): Promise<number> {
  const udx = new Udx()
  const [a, b] = [udx.createSocket(), udx.createSocket()]
  for (const s of [a, b]) {
    s.bind(0, '127.0.0.1')
    s.setRecvBufferSize(SOCKET_BUFFER_BYTES)
    s.setSendBufferSize(SOCKET_BUFFER_BYTES)
  }
  const [x, y] = [udx.createStream(1), udx.createStream(2)]
  x.connect(a, 2, b.address().port, '127.0.0.1')
  y.connect(b, 1, a.address().port, '127.0.0.1')
  let got = 0
  const received = new Promise<void>(resolve => { y.on('data', (d: Buffer) => { got += d.byteLength; if (got >= bytes) resolve() }) })
  try {
    return await timed(chunk => x.write(chunk), async () => await once(x, 'drain'), received)
  } finally {
    x.destroy()
    y.destroy()
    await Promise.all([a.close(), b.close()])
  }
}

type Node = Libp2p<{ internals: { transports: Transport[] } }>

async function node (): Promise<Node> {
  return await createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    transports: [udxTransport({ host: '127.0.0.1' })],
    connectionEncrypters: [socketTls()],
    streamMuxers: [yamux()],
    services: { internals: (c: { transportManager: { getTransports: () => Transport[] } }) => ({ get transports () { return c.transportManager.getTransports() } }) }
  }) as Node
}

async function upgraded (): Promise<number> {
  const [a, b] = await Promise.all([node(), node()])
  try {
    let got = 0
    let done!: () => void
    const received = new Promise<void>(resolve => { done = resolve })
    await b.handle('/bench/sink/1.0.0', (stream: Stream) => {
      stream.addEventListener('message', evt => { got += evt.data.byteLength; if (got >= bytes) done() })
    })
    const port = findUdx(b.services.internals.transports)?.port
    if (port == null) throw new Error('no udx socket')
    const connection = await a.dial(udxAddr({ host: '127.0.0.1', port }).encapsulate(`/p2p/${b.peerId.toString()}`))
    const stream = await connection.newStream('/bench/sink/1.0.0')
    return await timed(chunk => stream.send(chunk), async () => await stream.onDrain(), received)
  } finally {
    // One after the other: both stopping at once in one process hung (each waits for the
    // other's udx close); daemons in separate processes stop fine (the NAT lab's logs).
    await a.stop()
    await b.stop()
  }
}

const rates: Record<string, number[]> = { 'raw udx': [], 'udx + TLS + yamux': [] }
for (let i = 0; i < Number(flags.repeats); i++) {
  rates['raw udx']!.push(await raw())
  rates['udx + TLS + yamux']!.push(await upgraded())
}
console.log(`${flags.mib} MiB one way on loopback, one stream, ${flags.repeats} runs each (MB/s):`)
for (const [name, list] of Object.entries(rates)) console.log(`  ${name.padEnd(18)} ${list.map(r => r.toFixed(1)).join('  ')}`)
process.exit(0)
