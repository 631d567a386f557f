/**
 * The udx transport (transport/udx/): one UDP socket per node accepts and dials; its
 * connections are secured (TLS) and muxed (yamux) by libp2p's own upgrader, so protocols
 * run on them as on TCP. On loopback, two real libp2p nodes.
 */
import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { once } from 'node:events'
import { createLibp2p, type Libp2p } from 'libp2p'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { TransportManager } from '@libp2p/interface-internal'
import type { Stream } from '@libp2p/interface'
import { findUdx, udxTransport, type UdxTransport } from '../src/transport/udx/transport.ts'
import { udxAddr } from '../src/transport/udx/addr.ts'
import { decodeDatagram, encodeDatagram } from '../src/transport/udx/datagrams.ts'
import { socketTls } from '../src/socket-tls.ts'
import { random, sha256 } from './fixtures.ts'

type Node = Libp2p<{ internals: { transportManager: TransportManager } }>
const ECHO = '/test/echo/1.0.0'

const nodes: Node[] = []
after(async () => { await Promise.all(nodes.map(async n => n.stop())) })

/** `host`: the IPv4 socket's address; '0.0.0.0' opens the IPv6 socket beside it. */
async function node (host = '127.0.0.1'): Promise<{ node: Node, udx: UdxTransport }> {
  const n = await createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    transports: [udxTransport({ host })],
    connectionEncrypters: [socketTls()],
    streamMuxers: [yamux()],
    services: {
      internals: (components: { transportManager: TransportManager }) => ({ get transportManager () { return components.transportManager } })
    }
  }) as Node
  nodes.push(n)
  await n.handle(ECHO, (stream: Stream) => {
    stream.addEventListener('message', evt => {
      if (!stream.send(evt.data)) { stream.pause(); void stream.onDrain().then(() => { stream.resume() }) }
    })
    stream.addEventListener('remoteCloseWrite', () => { void stream.close() })
  })
  const udx = findUdx(n.services.internals.transportManager.getTransports())
  assert.ok(udx?.port != null, 'the udx socket is open once the node started')
  return { node: n, udx }
}

async function echo (stream: Stream, data: Uint8Array): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  const done = new Promise<void>(resolve => { stream.addEventListener('close', () => { resolve() }) })
  stream.addEventListener('message', evt => { chunks.push(evt.data.subarray()) })
  for (let i = 0; i < data.byteLength; i += 64 * 1024) {
    if (!stream.send(data.subarray(i, i + 64 * 1024))) await stream.onDrain()
  }
  await stream.close()
  await done
  return Buffer.concat(chunks)
}

describe('udx transport', () => {
  it('dials a peer over UDP, secured and muxed by libp2p: a stream echoes 8 MiB byte-exact', async () => {
    const a = await node()
    const b = await node()
    const target = udxAddr({ host: '127.0.0.1', port: b.udx.port! }).encapsulate(`/p2p/${b.node.peerId.toString()}`)
    const connection = await a.node.dial(target)
    assert.equal(connection.remotePeer.toString(), b.node.peerId.toString(), 'TLS proved the remote peer')
    assert.match(connection.remoteAddr.toString(), /\/udp\/\d+\/udx\/p2p\//)
    assert.equal(connection.encryption, '/tls/1.0.0')
    assert.equal(connection.multiplexer, '/yamux/1.0.0')
    const data = random(8 * 1024 * 1024)
    const back = await echo(await connection.newStream(ECHO), data)
    assert.equal(back.byteLength, data.byteLength)
    assert.equal(sha256(back), sha256(data))
    const inbound = b.node.getConnections(a.node.peerId)
    assert.equal(inbound.length, 1)
    assert.equal(inbound[0]!.direction, 'inbound')
    await connection.close()
  })

  it('a dial to a port where nobody answers fails after its SYNs, and an aborted dial stops at once', async () => {
    const a = await node()
    const silent = createSocket('udp4')
    silent.bind(0, '127.0.0.1')
    await once(silent, 'listening')
    let syns = 0
    silent.on('message', m => { if (decodeDatagram(m)?.type === 'syn') syns++ })
    const target = udxAddr({ host: '127.0.0.1', port: silent.address().port })
    const started = Date.now()
    await assert.rejects(a.node.services.internals.transportManager.dial(target, { signal: AbortSignal.timeout(300) }))
    assert.ok(Date.now() - started < 1_000, 'the abort ended the dial')
    assert.ok(syns >= 2 && syns <= 5, `SYNs resent every 100 ms until aborted (${syns})`)
    silent.close()
  })

  it('answers a stranger\'s SYN with one SYN-ACK of the same size, and a resent SYN with the same answer, at most 10 times', async () => {
    const b = await node()
    const stranger = createSocket('udp4')
    stranger.bind(0, '127.0.0.1')
    await once(stranger, 'listening')
    const replies: Buffer[] = []
    stranger.on('message', m => { replies.push(m) })
    const syn = encodeDatagram({ type: 'syn', nonce: 7, streamId: 99 })
    for (let i = 0; i < 15; i++) stranger.send(syn, b.udx.port!, '127.0.0.1')
    const garbage = Buffer.from('hello, anyone there?')
    stranger.send(garbage, b.udx.port!, '127.0.0.1')
    await new Promise(resolve => setTimeout(resolve, 300))
    assert.equal(replies.length, 10, 'at most SYN_ACKS_PER_HANDSHAKE answers to one handshake')
    for (const r of replies) {
      assert.equal(r.byteLength, syn.byteLength, 'no amplification')
      const d = decodeDatagram(r)
      assert.equal(d?.type, 'syn-ack')
    }
    assert.equal(new Set(replies.map(r => r.toString('hex'))).size, 1, 'the same answer each time')
    stranger.close()
  })

  it('probe() sends PROBEs to each target, a bounded number of times', async () => {
    const a = await node()
    const target = createSocket('udp4')
    target.bind(0, '127.0.0.1')
    await once(target, 'listening')
    let probes = 0
    target.on('message', m => { if (decodeDatagram(m)?.type === 'probe') probes++ })
    await a.udx.probe([{ host: '127.0.0.1', port: target.address().port }], AbortSignal.timeout(5_000))
    await new Promise(resolve => setTimeout(resolve, 50))
    assert.equal(probes, 10)
    target.close()
  })

  it('dials over IPv6 from the IPv6 socket on the same port: a stream echoes 1 MiB byte-exact', async () => {
    const a = await node('0.0.0.0')
    const b = await node('0.0.0.0')
    const target = udxAddr({ host: '::1', port: b.udx.port! }).encapsulate(`/p2p/${b.node.peerId.toString()}`)
    assert.equal(target.toString().split('/p2p/')[0], `/ip6/::1/udp/${b.udx.port!}/udx`)
    const connection = await a.node.dial(target)
    assert.equal(connection.remotePeer.toString(), b.node.peerId.toString())
    const data = random(1024 * 1024)
    assert.equal(sha256(await echo(await connection.newStream(ECHO), data)), sha256(data))
    const inbound = b.node.getConnections(a.node.peerId)
    assert.match(inbound[0]!.remoteAddr.toString(), new RegExp(`^/ip6/::1/udp/${a.udx.port!}/udx`), 'the dial left from the IPv6 socket, on the IPv4 socket\'s port')
    await connection.close()
  })

  it('offers global IPv6 interface addresses only with the IPv6 socket open, never link-local or unique-local ones', async () => {
    const interfaces = (): ReturnType<typeof import('node:os').networkInterfaces> => ({
      eth0: [
        { address: '11.0.0.5', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: false, cidr: '11.0.0.5/8' },
        { address: '2001:db9:b::2', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '00:00:00:00:00:00', internal: false, cidr: '2001:db9:b::2/64', scopeid: 0 },
        { address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '00:00:00:00:00:00', internal: false, cidr: 'fe80::1/64', scopeid: 2 },
        { address: 'fd00::5', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '00:00:00:00:00:00', internal: false, cidr: 'fd00::5/64', scopeid: 0 }
      ]
    })
    const dual = await node('0.0.0.0')
    assert.deepEqual(dual.udx.localAddresses(interfaces), [{ host: '11.0.0.5', port: dual.udx.port }, { host: '2001:db9:b::2', port: dual.udx.port }])
    const v4only = await node('127.0.0.1')
    assert.deepEqual(v4only.udx.localAddresses(interfaces), [{ host: '11.0.0.5', port: v4only.udx.port }])
  })

  it('an OBSERVE datagram completes the waiter for its token with the sender\'s address; other tokens are dropped', async () => {
    const a = await node()
    const b = await node()
    const token = random(16)
    const seen = a.udx.expectObserve(token, AbortSignal.timeout(2_000))
    assert.ok(seen != null)
    b.udx.sendObserve(random(16), { host: '127.0.0.1', port: a.udx.port! })
    b.udx.sendObserve(token, { host: '127.0.0.1', port: a.udx.port! })
    assert.deepEqual(await seen, { host: '127.0.0.1', port: b.udx.port })
  })
})
