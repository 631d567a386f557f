/**
 * `/punchgate/udp-observe/1.0.0` (holepunch/udp-observe.ts): a node learns its udx socket's
 * mapping from a peer, the answer on the authenticated stream (the observer sends no UDP);
 * the observer answers a peer a few times a minute, and only with a token it handed out.
 * Two libp2p nodes on loopback (TCP for the stream, udx for the datagram).
 */
import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { once } from 'node:events'
import { createLibp2p, type Libp2p } from 'libp2p'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { identify } from '@libp2p/identify'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { lpStream } from '@libp2p/utils'
import type { TransportManager } from '@libp2p/interface-internal'
import { UdpObserver } from '../src/holepunch/udp-observe.ts'
import { findUdx, udxTransport } from '../src/transport/udx/transport.ts'
import { UDP_OBSERVE_PROTOCOL } from '../src/constants.ts'
import { socketTls } from '../src/socket-tls.ts'
import { until } from './fixtures.ts'

type Node = Libp2p<{ internals: { transportManager: TransportManager } }>
const nodes: Array<{ node: Node, observer: UdpObserver }> = []
after(async () => {
  for (const n of nodes) n.observer.stop()
  await Promise.all(nodes.map(async n => n.node.stop()))
})

async function node (): Promise<{ node: Node, observer: UdpObserver, port: number }> {
  const n = await createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp(), udxTransport({ host: '127.0.0.1' })],
    connectionEncrypters: [socketTls()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      internals: (components: { transportManager: TransportManager }) => ({ get transportManager () { return components.transportManager } })
    }
  }) as Node
  const udx = findUdx(n.services.internals.transportManager.getTransports())!
  const observer = new UdpObserver(n, udx)
  await observer.start()
  nodes.push({ node: n, observer })
  return { node: n, observer, port: udx.port! }
}

describe('udp-observe', () => {
  it('asks a directly connected peer on identify and keeps its answer: our udx socket as the peer saw it', async () => {
    const a = await node()
    const b = await node()
    await a.node.dial(b.node.getMultiaddrs()[0]!)
    await until(() => a.observer.mappings().length > 0 && b.observer.mappings().length > 0, 5_000, 20)
    assert.deepEqual(a.observer.mappings(), [`/ip4/127.0.0.1/udp/${a.port}`])
    assert.deepEqual(b.observer.mappings(), [`/ip4/127.0.0.1/udp/${b.port}`])
    assert.equal(a.observer.candidates()[0], `/ip4/127.0.0.1/udp/${a.port}`, 'the mapping is the first UDP candidate')
  })

  it('answers one peer at most 4 times a minute: later asks are reset', async () => {
    const a = await node()
    const b = await node()
    const connection = await a.node.dial(b.node.getMultiaddrs()[0]!)
    await until(() => a.observer.mappings().length > 0, 5_000, 20) // the ask on identify: 1 of 4
    for (let i = 0; i < 3; i++) assert.equal(await a.observer.ask(connection), `/ip4/127.0.0.1/udp/${a.port}`)
    await assert.rejects(a.observer.ask(connection))
  })

  it('an asker that never sends the datagram gets no answer, and the observer sends no UDP to anyone', async () => {
    const a = await node()
    const b = await node()
    // Anything the observer sent over UDP would have to go somewhere: watch a socket that asks by hand.
    const watcher = createSocket('udp4')
    watcher.bind(0, '127.0.0.1')
    await once(watcher, 'listening')
    let datagrams = 0
    watcher.on('message', () => { datagrams++ })
    const connection = await a.node.dial(b.node.getMultiaddrs()[0]!)
    const stream = await connection.newStream(UDP_OBSERVE_PROTOCOL)
    const lp = lpStream(stream)
    const offer = JSON.parse(new TextDecoder().decode((await lp.read()).subarray())) as { port: number, token: string }
    assert.equal(offer.port, b.port)
    assert.equal(Buffer.from(offer.token, 'base64').byteLength, 16)
    // A datagram from another socket with a made-up token: no answer for it.
    watcher.send(Buffer.from('PGUD\x01\x04' + 'x'.repeat(16), 'latin1'), b.port, '127.0.0.1')
    const started = Date.now()
    await assert.rejects(lp.read())
    assert.ok(Date.now() - started >= 2_000, 'reset when the token timed out, not before')
    assert.equal(datagrams, 0)
    watcher.close()
  })
})
