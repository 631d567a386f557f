/**
 * libp2p merged each new stream's protocol into the peer store, on both sides, for every
 * stream: a read, a protobuf round trip and a write per tunnelled connection, the largest
 * single cost of opening one (docs/performance.md). patches/ makes it once per protocol
 * and connection; this test fails if the patch is lost (e.g. by a libp2p upgrade).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { multiaddr } from '@multiformats/multiaddr'
import type { Stream, StreamCloseEvent } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'
import { socketTls } from '../src/socket-tls.ts'
import { ECHO, echoPeer, random, sha256 } from './fixtures.ts'

/** A node whose peer store counts the merges that record ECHO. */
async function node (listen: boolean): Promise<{ libp2p: Libp2p, merges: () => number }> {
  const libp2p = await echoPeer(socketTls(), listen)
  let merges = 0
  const merge = libp2p.peerStore.merge.bind(libp2p.peerStore)
  libp2p.peerStore.merge = async (peer, data, options) => {
    if (data.protocols?.includes(ECHO) === true) merges++
    return merge(peer, data, options)
  }
  return { libp2p, merges: () => merges }
}

describe('opening streams', () => {
  it('records a stream\'s protocol in the peer store once per connection, not for every stream', async () => {
    const [dialer, listener] = await Promise.all([node(false), node(true)])
    try {
      const addr = listener.libp2p.getMultiaddrs()[0]!
      for (let i = 0; i < 20; i++) {
        const stream = await dialer.libp2p.dialProtocol(addr, ECHO)
        const echoed = new Promise<void>(resolve => stream.addEventListener('message', () => resolve(), { once: true }))
        stream.send(Uint8Array.of(i))
        await echoed
        await stream.close()
      }
      assert.equal(dialer.libp2p.getConnections().length, 1)
      assert.equal(dialer.merges(), 1, 'merges on the dialing side')
      assert.equal(listener.merges(), 1, 'merges on the listening side')
    } finally {
      await Promise.all([dialer.libp2p.stop(), listener.libp2p.stop()])
    }
  })
})

/** A TCP hop to `port` whose way back can be held: what the far side sends waits until release(). */
async function holdingHop (port: number): Promise<{ port: number, hold: () => void, release: () => void, close: () => void }> {
  let holding = false
  const held: Array<() => void> = []
  const sockets = new Set<Socket>()
  const server = createServer(near => {
    const far = connect({ port, host: '127.0.0.1' })
    sockets.add(near).add(far)
    near.on('data', chunk => far.write(chunk))
    far.on('data', chunk => { if (holding) held.push(() => near.write(chunk)); else near.write(chunk) })
    near.on('error', () => far.destroy())
    far.on('error', () => near.destroy())
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as AddressInfo).port,
    hold: () => { holding = true },
    release: () => { holding = false; held.splice(0).forEach(write => write()) },
    close: () => { for (const s of sockets) s.destroy(); server.close() }
  }
}

async function readBytes (stream: Stream, length: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let got = 0
  for await (const chunk of stream) {
    chunks.push(Buffer.from(chunk.subarray()))
    got += chunk.byteLength
    if (got >= length) break
  }
  return Buffer.concat(chunks)
}

// A tunnel's new connection sends its protocol choice, its request and its first bytes
// together: newStream must not wait for the listener's answer (patches/README.md).
describe('optimistic protocol select (negotiateFully: false)', () => {
  it('hands the stream back before the listener answered, and the bytes sent at once arrive byte-exact', async () => {
    const [dialer, listener] = await Promise.all([node(false), node(true)])
    const listenPort = Number(listener.libp2p.getMultiaddrs()[0]!.toString().split('/')[4])
    const hop = await holdingHop(listenPort)
    try {
      const connection = await dialer.libp2p.dial(multiaddr(`/ip4/127.0.0.1/tcp/${hop.port}/p2p/${listener.libp2p.peerId.toString()}`))
      hop.hold()
      const stream = await connection.newStream(ECHO, { negotiateFully: false, signal: AbortSignal.timeout(5_000) })
      assert.equal(stream.protocol, ECHO)
      const data = random(100_000)
      stream.send(data)
      hop.release()
      const echoed = await readBytes(stream, data.length)
      assert.equal(sha256(echoed), sha256(data), 'the answer to the select never reaches the reader')
      await stream.close()
    } finally {
      hop.close()
      await Promise.all([dialer.libp2p.stop(), listener.libp2p.stop()])
    }
  })

  it('aborts the stream when the listener does not speak the protocol, and delivers nothing', async () => {
    const [dialer, listener] = await Promise.all([node(false), node(true)])
    try {
      const connection = await dialer.libp2p.dial(listener.libp2p.getMultiaddrs()[0]!)
      const stream = await connection.newStream('/test/nope/1.0.0', { negotiateFully: false, signal: AbortSignal.timeout(5_000) })
      let delivered = 0
      stream.addEventListener('message', evt => { delivered += evt.data.byteLength })
      stream.send(Uint8Array.of(1, 2, 3))
      const [closed] = await once(stream, 'close') as [StreamCloseEvent]
      assert.equal(closed.error?.name, 'UnsupportedProtocolError')
      assert.equal(delivered, 0)
      assert.equal(stream.status, 'aborted')
    } finally {
      await Promise.all([dialer.libp2p.stop(), listener.libp2p.stop()])
    }
  })
})
