/**
 * A hostile peer that floods the tunnel protocol: streams that never send a handshake are
 * capped per connection and cut at the handshake timeout; sessions that never read are
 * capped per peer. A pair that relays a flood to a receiver that never reads is held back
 * by the relay. Meanwhile a well-behaved peer's tunnel stays byte-exact.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { multiaddr } from '@multiformats/multiaddr'
import type { Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { MAX_TUNNEL_STREAMS, TUNNEL_PROTOCOL, type PunchgateNode } from '../src/index.ts'
import { encodeFrame } from '../src/protocol/handshake.ts'
import { echoServer, event, plateau, portOf, random, roundTrip, sha256, tcpAddr, testNode, until } from './fixtures.ts'

/** Short enough to keep the test quick, long enough for 1,100 streams to open within it on a loaded machine. */
const HANDSHAKE_MS = 4_000
const FLOOD_STREAMS = MAX_TUNNEL_STREAMS + 76

/** A bare libp2p peer speaking the tunnel protocol as it likes, not as Punchgate would. */
async function rawPeer (): Promise<Libp2p> {
  return createLibp2p({
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ maxOutboundStreams: 4096 })]
  })
}

/** The server's inbound tunnel streams from `peer`, as libp2p counts them. */
function tunnelStreamsFrom (node: PunchgateNode, peer: Libp2p): number {
  return node.swarm.getConnections(peer.peerId)
    .flatMap(c => c.streams)
    .filter(s => s.protocol === TUNNEL_PROTOCOL && s.direction === 'inbound').length
}

/** A varint length prefix and the frame, as a client sends its request. */
function requestFrame (service: string): Uint8Array {
  const body = encodeFrame({ service })
  return Uint8Array.from([body.length, ...body])
}

/** Circuit relay v2 (libp2p/specs relay/circuit-v2.md), spoken by hand so a peer can misbehave in it. */
const HOP = '/libp2p/circuit/relay/0.2.0/hop'
const STOP = '/libp2p/circuit/relay/0.2.0/stop'
const STATUS_OK = 100
/** HopMessage { type: RESERVE } */
const RESERVE = Uint8Array.of(0x08, 0x00)
/** StopMessage { type: STATUS, status: OK } */
const STOP_OK = Uint8Array.of(0x08, 0x01, 0x20, STATUS_OK)
/** HopMessage { type: CONNECT, peer: { id } } (an Ed25519 peer id is 38 bytes: every length fits one byte). */
function connectTo (id: Uint8Array): Uint8Array {
  return Uint8Array.of(0x08, 0x01, 0x12, id.length + 2, 0x0a, id.length, ...id)
}

/** The `status` field of a HopMessage (5) or StopMessage (4); every field before it is a varint or bytes. */
function statusOf (message: Uint8Array, field: number): number | undefined {
  let at = 0
  const varint = (): number => {
    let value = 0
    for (let shift = 0; ; shift += 7) {
      const byte = message[at++] ?? 0
      value += (byte & 0x7f) * 2 ** shift
      if (byte < 0x80) return value
    }
  }
  while (at < message.length) {
    const tag = varint()
    if ((tag & 7) === 2) {
      const length = varint()
      at += length
      continue
    }
    const value = varint()
    if (tag >>> 3 === field) return value
  }
  return undefined
}

/** Sends one length-prefixed message on a new `protocol` stream and returns the stream and the status of the answer. */
async function ask (peer: Libp2p, relayAddr: string, protocol: string, message: Uint8Array): Promise<{ stream: Stream, status: number | undefined }> {
  const stream = await peer.dialProtocol(multiaddr(relayAddr), protocol)
  const lp = lpStream(stream)
  await lp.write(message)
  const answer = await lp.read()
  return { stream: lp.unwrap(), status: statusOf(answer.subarray(), 5) }
}

async function goodPeerEchoes (consumer: PunchgateNode, bytes: number): Promise<void> {
  const data = random(bytes)
  const echoed = await roundTrip(portOf(consumer.tunnels()[0]?.bind ?? ''), data)
  assert.equal(echoed.length, data.length)
  assert.equal(sha256(echoed), sha256(data), 'the good peer\'s bytes came back byte-exact')
}

describe('a hostile peer', () => {
  it('opening streams it never speaks on is capped per connection and cut at the handshake timeout', async (t) => {
    const echo = await echoServer()
    const provider = await testNode({ allowAny: true, expose: [`echo=127.0.0.1:${echo.port}`] }, { handshakeTimeoutMs: HANDSHAKE_MS })
    const consumer = await testNode({ bootstrap: [tcpAddr(provider)], tunnel: [`${provider.peerId}:echo@127.0.0.1:0`] })
    const bad = await rawPeer()
    await event(consumer, 'tunnel.activated')
    let badRequests = 0
    provider.events.onEvent('tunnel.rejected', f => { if (f.peer === bad.peerId.toString() && f.reason === 'bad-request') badRequests++ })
    try {
      const connection = await bad.dial(multiaddr(tcpAddr(provider)))
      // One stream first: until the server's side of the connection is set up, yamux takes
      // at most 10 streams and closes the connection on the 11th (MaxEarlyStreamsError).
      const openedAt = new Map<Stream, number>()
      const closedAt = new Map<Stream, number>()
      const open = async (): Promise<Stream> => {
        const stream = await connection.newStream(TUNNEL_PROTOCOL, { maxOutboundStreams: 4096 })
        openedAt.set(stream, Date.now())
        if (stream.status !== 'open') closedAt.set(stream, Date.now())
        else stream.addEventListener('close', () => closedAt.set(stream, Date.now()), { once: true })
        return stream
      }
      const first = await open()
      const opened = await Promise.allSettled(Array.from({ length: FLOOD_STREAMS - 1 }, open))
      const streams = [first, ...opened.flatMap(r => r.status === 'fulfilled' ? [r.value] : [])]

      // The server holds at most MAX_TUNNEL_STREAMS of them; libp2p resets the rest.
      await until(() => streams.length - closedAt.size <= MAX_TUNNEL_STREAMS, 5_000, 20)
      // The ones the server holds: still open once the cap's resets have come back (and the
      // server has taken the last of them: its count can trail ours by a stream for a moment).
      const stillOpen = (): Stream[] => streams.filter(s => !closedAt.has(s))
      await until(() => tunnelStreamsFrom(provider, bad) === stillOpen().length, 5_000, 20)
      const holding = stillOpen()
      const held = tunnelStreamsFrom(provider, bad)
      assert.ok(held <= MAX_TUNNEL_STREAMS, `server holds ${held} streams`)
      assert.ok(held > 0, 'the flood reached the server')

      // While the flood is held open, another peer's tunnel works.
      const started = Date.now()
      await goodPeerEchoes(consumer, 1024 * 1024)
      t.diagnostic(`held ${held} of ${streams.length} streams, ${streams.length - held} reset by the cap; good peer echoed 1 MiB in ${Date.now() - started} ms during the flood`)
      assert.equal(echo.connections(), 1, 'only the good peer ever reached the target')

      // Every flood stream is closed by the server at the handshake timeout, not before.
      await until(() => closedAt.size === streams.length, HANDSHAKE_MS + 15_000, 50)
      await until(() => tunnelStreamsFrom(provider, bad) === 0, 5_000, 20)
      // The server's timers started after the first stream's opening. Counted over the streams
      // it held, not over all: on a busy machine the cap's resets can themselves come late.
      const floodStarted = openedAt.get(first) ?? 0
      const closed = holding.map(s => (closedAt.get(s) ?? 0) - floodStarted)
      const cutByTimeout = closed.filter(ms => ms >= HANDSHAKE_MS * 0.9).length
      assert.equal(holding.length, held, 'the streams left open are the ones the server holds')
      assert.equal(cutByTimeout, held, 'the held streams were cut at the handshake timeout, not before')
      assert.equal(badRequests, held, 'each held stream was rejected once as a bad request')
      t.diagnostic(`${held} streams cut by the ${HANDSHAKE_MS} ms handshake timeout, the last ${Math.max(...closed)} ms after the flood began`)
      assert.equal(echo.connections(), 1)
      await goodPeerEchoes(consumer, 64 * 1024)
    } finally {
      await bad.stop()
      await Promise.all([consumer.stop({ drainMs: 0 }), provider.stop({ drainMs: 0 })])
      await echo.close()
    }
  })

  it('holding sessions it never reads is capped by --max-sessions-per-peer, and its sessions are freed when it leaves', async () => {
    const perPeer = 4
    const attempts = 12
    const echo = await echoServer()
    const provider = await testNode({ allowAny: true, expose: [`echo=127.0.0.1:${echo.port}`], maxSessionsPerPeer: perPeer })
    const consumer = await testNode({ bootstrap: [tcpAddr(provider)], tunnel: [`${provider.peerId}:echo@127.0.0.1:0`] })
    const bad = await rawPeer()
    await event(consumer, 'tunnel.activated')
    let opened = 0
    let refused = 0
    provider.events.onEvent('tunnel.opened', f => { if (f.peer === bad.peerId.toString()) opened++ })
    provider.events.onEvent('tunnel.rejected', f => { if (f.peer === bad.peerId.toString() && f.reason === 'too-many-sessions') refused++ })
    try {
      const target = multiaddr(tcpAddr(provider))
      for (let i = 0; i < attempts; i++) {
        const stream = await bad.dialProtocol(target, TUNNEL_PROTOCOL)
        // Never read: whatever the target echoes stays in flight until flow control stops it.
        stream.pause()
        stream.send(requestFrame('echo'))
        stream.send(random(256 * 1024))
      }
      await until(() => opened + refused === attempts, 10_000, 20)
      assert.equal(opened, perPeer, 'sessions beyond the per-peer cap were not opened')
      assert.equal(refused, attempts - perPeer)
      assert.equal(echo.open(), perPeer, 'the target holds only the capped sessions')

      // The cap is per peer: the good peer still gets through, byte-exact.
      await goodPeerEchoes(consumer, 1024 * 1024)

      await bad.stop()
      await until(() => echo.open() === 0, 10_000, 20)
      await goodPeerEchoes(consumer, 64 * 1024)
    } finally {
      await bad.stop()
      await Promise.all([consumer.stop({ drainMs: 0 }), provider.stop({ drainMs: 0 })])
      await echo.close()
    }
  })

  // What the relay (circuit-relay-v2, patched: patches/README.md) reads from one side it
  // must be able to hand to the other. Unpatched it read the sender as fast as it came, so
  // all of FLOOD ended up queued in the relay, for a receiver that reads none of it.
  it('relaying a flood to a receiver that never reads: the relay holds the sender back, and a good tunnel through it still works', { timeout: 120_000 }, async (t) => {
    const FLOOD = 96 * 1024 * 1024
    const BLOCK = random(256 * 1024)
    const echo = await echoServer()
    const relay = await testNode()
    const relayAddr = tcpAddr(relay)
    const provider = await testNode({ listen: ['none'], bootstrap: [relayAddr], allowAny: true, expose: [`echo=127.0.0.1:${echo.port}`] })
    await event(provider, 'service.published')
    const consumer = await testNode({ listen: ['none'], bootstrap: [relayAddr], tunnel: [`${provider.peerId}:echo@127.0.0.1:0`] })
    const receiver = await rawPeer()
    const sender = await rawPeer()
    try {
      assert.equal((await event(consumer, 'tunnel.activated')).path, 'relay')

      // The receiver reserves a slot, accepts the relayed stream and never reads it.
      let accept: (stream: Stream) => void = () => {}
      const accepted = new Promise<Stream>(resolve => { accept = resolve })
      await receiver.handle(STOP, async (stream) => {
        const lp = lpStream(stream)
        await lp.read()
        await lp.write(STOP_OK)
        const relayed = lp.unwrap()
        relayed.pause()
        accept(relayed)
      })
      assert.equal((await ask(receiver, relayAddr, HOP, RESERVE)).status, STATUS_OK, 'the relay took the reservation')

      // The sender sends as fast as its stream to the relay takes it.
      const { stream, status } = await ask(sender, relayAddr, HOP, connectTo(receiver.peerId.toMultihash().bytes))
      assert.equal(status, STATUS_OK, 'the relay connected the sender to the receiver')
      await accepted
      let sent = 0
      let stopping = false
      let cut: unknown
      const flood = (async () => {
        while (!stopping && sent < FLOOD) {
          sent += BLOCK.byteLength
          if (!stream.send(BLOCK)) await stream.onDrain()
        }
        await stream.close()
      })().catch((err: unknown) => { cut = err })

      const held = await plateau(() => sent, FLOOD)
      assert.equal(cut, undefined, `the circuit was cut after the sender handed over ${sent} bytes`)
      // Two yamux windows (4 MiB at most each), the relay's read buffer and the kernel's
      // socket buffers fit well within this.
      assert.ok(held < 32 * 1024 * 1024, `the sender handed the relay ${held} bytes for a receiver that read none`)
      const queued = relay.swarm.getConnections(receiver.peerId).flatMap(c => c.streams).reduce((n, s) => n + s.writeBufferLength, 0)
      assert.ok(queued <= 8 * 1024 * 1024, `the relay queued ${queued} bytes for the receiver`)
      t.diagnostic(`the sender was held at ${(held / 2 ** 20).toFixed(2)} MiB of ${FLOOD / 2 ** 20}; the relay queued ${(queued / 2 ** 20).toFixed(2)} MiB for the receiver`)

      // Meanwhile the relay carries a well-behaved tunnel, byte-exact.
      await goodPeerEchoes(consumer, 4 * 1024 * 1024)

      // The held circuit was paused, not cut: once the receiver reads, every byte the sender
      // handed over arrives in order, and then the sender's FIN.
      stopping = true
      const relayed = await accepted
      const hash = createHash('sha256')
      let received = 0
      relayed.addEventListener('message', (evt) => {
        for (const chunk of evt.data instanceof Uint8Array ? [evt.data] : evt.data) {
          hash.update(chunk)
          received += chunk.byteLength
        }
      })
      const ended = new Promise(resolve => relayed.addEventListener('end', resolve, { once: true }))
      relayed.resume()
      await flood
      await ended
      assert.equal(cut, undefined, 'the circuit was cut')
      assert.equal(received, sent, 'the receiver got every byte the sender sent')
      const expected = createHash('sha256')
      for (let n = 0; n < sent; n += BLOCK.byteLength) expected.update(BLOCK)
      assert.equal(hash.digest('hex'), expected.digest('hex'), 'byte-exact')
    } finally {
      await Promise.all([sender.stop(), receiver.stop()])
      await Promise.all([consumer.stop({ drainMs: 0 }), provider.stop({ drainMs: 0 }), relay.stop({ drainMs: 0 })])
      await echo.close()
    }
  })
})
