/**
 * Splice relay (docs/splice.md): a public node pairs two TCP sockets by token and copies
 * bytes; the ends run libp2p (TLS, yamux) end to end over them. Through the runner, with
 * its defaults; then the fallback to the circuit, and the relay's checks one by one.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { once } from 'node:events'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import type { PeerId, Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { SPLICE_PROTOCOL } from '../src/constants.ts'
import { startSplicer } from '../src/splice/splicer.ts'
import { acceptSplices, serveSplices, spliceTo } from '../src/splice/service.ts'
import type { PunchgateNode, RawConfig } from '../src/index.ts'
import { echoServer, event, portOf, random, roundTrip, sha256, tcpAddr, testNode, until } from './fixtures.ts'

function bindOf (node: PunchgateNode): number {
  return portOf(node.tunnels()[0]?.bind ?? '')
}

/** A listening server on `port`, with `port - 1` free (as far as a probe can tell). */
async function takenAboveFree (): Promise<{ taken: Server, port: number }> {
  for (;;) {
    const taken = createServer()
    taken.listen(0, '127.0.0.1')
    await once(taken, 'listening')
    const port = (taken.address() as AddressInfo).port
    const probe = createServer()
    const free = await new Promise<boolean>(resolve => {
      probe.once('error', () => resolve(false))
      probe.listen(port - 1, '127.0.0.1', () => resolve(true))
    })
    if (free) {
      await new Promise(resolve => probe.close(resolve))
      return { taken, port }
    }
    taken.close()
  }
}

/**
 * A public node (`relayConfig`), an echo service exposed by a private node and a private
 * consumer tunnelling to it; neither private node listens, so they meet only through the
 * relay. `body` runs as soon as the consumer has started.
 */
async function relayedTunnel (
  relayConfig: RawConfig,
  body: (nodes: { relay: PunchgateNode, provider: PunchgateNode, consumer: PunchgateNode }) => Promise<void>
): Promise<void> {
  const echo = await echoServer()
  const relay = await testNode(relayConfig)
  const provider = await testNode({ listen: ['none'], bootstrap: [tcpAddr(relay)], allowAny: true, expose: [`echo=127.0.0.1:${echo.port}`] })
  try {
    await event(provider, 'service.published')
    const consumer = await testNode({ listen: ['none'], bootstrap: [tcpAddr(relay)], tunnel: [`${provider.peerId}:echo@127.0.0.1:0`] })
    try {
      await body({ relay, provider, consumer })
    } finally {
      await consumer.stop({ drainMs: 0 })
    }
  } finally {
    await provider.stop({ drainMs: 0 })
    await relay.stop({ drainMs: 0 })
    await echo.close()
  }
}

describe('splice relay', () => {
  it('by default a public node splices two private peers, and their tunnel carries its bytes over the splice', { timeout: 60_000 }, async () => {
    await relayedTunnel({}, async ({ relay, provider, consumer }) => {
      const spliced = event(consumer, 'splice.opened')
      assert.equal((await event(consumer, 'tunnel.activated')).path, 'relay')
      const opened = await spliced
      assert.equal(opened.peer, provider.peerId)
      assert.equal(opened.relay, relay.peerId)
      assert.match(opened.addr, new RegExp(`/p2p/${relay.peerId}/p2p-circuit/p2p/${provider.peerId}$`))

      const data = random(8 * 1024 * 1024)
      assert.equal(sha256(await roundTrip(bindOf(consumer), data)), sha256(data))
      const splice = relay.status().splice ?? assert.fail('the relay reports no splicer')
      assert.ok(splice.copied >= 2 * data.byteLength, `the relay copied ${splice.copied} bytes: the tunnel did not take the splice`)
      assert.equal(splice.active, 1)
      // Still a relayed path to the user: status and the tunnel say so.
      assert.equal(consumer.status().peers.find(p => p.peer === provider.peerId)?.path, 'relay')
      assert.equal(consumer.tunnels()[0]?.status, 'relayed')
    })
  })

  it('with a relay that does not splice (--relay-splice off), the tunnel carries on over the circuit', { timeout: 60_000 }, async () => {
    await relayedTunnel({ relaySplice: 'off' }, async ({ relay, provider, consumer }) => {
      assert.equal(relay.status().splice, undefined)
      const failed = event(consumer, 'splice.failed')
      assert.equal((await event(consumer, 'tunnel.activated')).path, 'relay')
      assert.equal((await failed).peer, provider.peerId)
      const data = random(2 * 1024 * 1024)
      assert.equal(sha256(await roundTrip(bindOf(consumer), data)), sha256(data))
      const connections = consumer.swarm.getConnections(peerIdFromString(provider.peerId))
      assert.ok(connections.length > 0 && connections.every(c => c.limits != null), 'only the circuit carries the tunnel')
    })
  })

  it('closes a spliced connection once the peers have a direct one, which frees the pair on the relay', { timeout: 60_000 }, async () => {
    const relay = await testNode()
    // Both ends listen, so they can also connect directly; the circuit is dialled by hand first.
    // Private on purpose: on loopback the relay reaches them, and --role auto would make them public.
    const provider = await testNode({ role: 'private', bootstrap: [tcpAddr(relay)] })
    const consumer = await testNode({ role: 'private', bootstrap: [tcpAddr(relay)] })
    try {
      await event(provider, 'relay.reserved')
      const providerId = peerIdFromString(provider.peerId)
      const spliced = event(consumer, 'splice.opened')
      await consumer.swarm.dial(multiaddr(`${tcpAddr(relay)}/p2p-circuit/p2p/${provider.peerId}`))
      await spliced
      assert.equal(relay.status().splice?.active, 1)
      const splice = consumer.swarm.getConnections(providerId).find(c => c.limits == null) ?? assert.fail('no spliced connection')
      const closed = new Promise<void>(resolve => {
        consumer.swarm.addEventListener('connection:close', evt => { if (evt.detail.id === splice.id) resolve() })
      })
      await consumer.swarm.dial(multiaddr(tcpAddr(provider)))
      await closed
      assert.ok(consumer.swarm.getConnections(providerId).some(c => c.status === 'open' && !c.remoteAddr.toString().includes('/p2p-circuit')), 'the direct connection stays')
      // The relay learns of it from its two sockets closing: no event of ours to wait for.
      await until(() => relay.status().splice?.active === 0)
    } finally {
      await Promise.all([consumer.stop({ drainMs: 0 }), provider.stop({ drainMs: 0 })])
      await relay.stop({ drainMs: 0 })
    }
  })

  it('a taken default splice port leaves the node running on circuits; a taken explicit one stops it with a ListenError', { timeout: 30_000 }, async () => {
    const { taken, port } = await takenAboveFree()
    try {
      // The default is the TCP listen port + 1: listen one below the taken port.
      const node = await testNode({ listen: [`/ip4/127.0.0.1/tcp/${port - 1}`] })
      try {
        assert.equal(node.status().splice, undefined)
        assert.ok(node.addrs().some(a => a.includes(`/tcp/${port - 1}/`)), 'the node listens where it was told')
      } finally {
        await node.stop({ drainMs: 0 })
      }
      await assert.rejects(testNode({ relaySplice: `127.0.0.1:${port}` }), (err: Error) => err.name === 'ListenError' && /--relay-splice "127.0.0.1:\d+": .*EADDRINUSE/.test(err.message))
    } finally {
      taken.close()
    }
  })

  it('splices only to a peer with a reservation that takes the offer; a refusal frees its slot at once; pairs are capped', { timeout: 60_000 }, async () => {
    // The relay's runner does not splice here: the test serves the protocol with a splicer
    // of one pair, so that "busy" and a freed slot can be seen.
    const relay = await testNode({ relaySplice: 'off' })
    const splicer = await startSplicer({ host: '127.0.0.1', port: 0, pairTimeoutMs: 5_000, maxPairs: 1, maxBytesPerPair: 2 ** 32, maxDurationMs: 60_000, maxUnpaired: 8 })
    const reservations = (relay.swarm.services as unknown as { relay: { reservations: { has: (peer: PeerId) => boolean } } }).relay.reservations
    await serveSplices(relay.swarm, splicer, (_from, to) => reservations.has(to))
    const a = await testNode({ listen: ['none'], bootstrap: [tcpAddr(relay)] })
    const b = await testNode({ listen: ['none'], bootstrap: [tcpAddr(relay)] })
    try {
      await Promise.all([event(a, 'relay.reserved'), event(b, 'relay.reserved')])
      const relayId = relay.swarm.peerId
      const stranger = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
      await assert.rejects(spliceTo(a.swarm, relayId, stranger), /not-allowed/, 'a peer without a reservation')

      await b.swarm.unhandle(SPLICE_PROTOCOL)
      await assert.rejects(spliceTo(a.swarm, relayId, peerIdFromString(b.peerId)), /refused/, 'a peer that does not take splices')
      await assert.rejects(spliceTo(a.swarm, relayId, peerIdFromString(b.peerId)), /refused/, 'the refused pair still holds the only slot')

      await acceptSplices(b.swarm, peer => peer.equals(relayId))
      const connection = await spliceTo(a.swarm, relayId, peerIdFromString(b.peerId))
      assert.equal(connection.limits, undefined)
      assert.equal(connection.remotePeer.toString(), b.peerId)
      assert.equal(splicer.active(), 1)
      await assert.rejects(spliceTo(b.swarm, relayId, peerIdFromString(a.peerId)), /busy/, 'a second pair beyond maxPairs')
    } finally {
      await Promise.all([a.stop({ drainMs: 0 }), b.stop({ drainMs: 0 })])
      await relay.stop({ drainMs: 0 })
      await splicer.close()
    }
  })

  it('an offer or an answer whose token is not 64 hex characters or whose port is not 1-65535 connects nowhere', { timeout: 30_000 }, async () => {
    const sink = await echoServer()
    const relay = await testNode({ relaySplice: 'off' })
    const a = await testNode({ listen: ['none'], bootstrap: [tcpAddr(relay)] })
    const b = await testNode({ listen: ['none'], bootstrap: [tcpAddr(relay)] })
    const frame = async (stream: Stream, value: unknown): Promise<void> => { await lpStream(stream).write(new TextEncoder().encode(JSON.stringify(value))) }
    const offer = async (value: Record<string, unknown>): Promise<unknown> => {
      const stream = await relay.swarm.dialProtocol(peerIdFromString(b.peerId), SPLICE_PROTOCOL)
      await frame(stream, { from: a.peerId, ...value })
      return JSON.parse(new TextDecoder().decode((await lpStream(stream).read()).subarray()))
    }
    try {
      await Promise.all([event(a, 'relay.reserved'), event(b, 'relay.reserved')])
      const token = 'ab'.repeat(32)
      for (const bad of [{ token: 'ab'.repeat(31), port: sink.port }, { token: `${token}00`, port: sink.port }, { token: 'zz'.repeat(32), port: sink.port },
        { token, port: 0 }, { token, port: 65_536 }, { token, port: String(sink.port) }]) {
        assert.deepEqual(await offer(bad), { accepted: false, reason: 'bad-request' }, JSON.stringify(bad))
      }
      assert.equal(sink.connections(), 0, 'a bad offer made B connect')

      // The relay answers A with a bad ticket: A gives up before connecting.
      await relay.swarm.handle(SPLICE_PROTOCOL, async (stream) => {
        await lpStream(stream).read()
        await frame(stream, { accepted: true, token: 'ab', port: sink.port })
      })
      await assert.rejects(spliceTo(a.swarm, relay.swarm.peerId, peerIdFromString(b.peerId)), /no valid token/)
      assert.equal(sink.connections(), 0, 'a bad answer made A connect')

      // The same offer with a good ticket does connect: the check above is what held B back.
      assert.deepEqual(await offer({ token, port: sink.port }), { accepted: true })
      await until(() => sink.connections() === 1, 5_000, 20)
    } finally {
      await Promise.all([a.stop({ drainMs: 0 }), b.stop({ drainMs: 0 })])
      await relay.stop({ drainMs: 0 })
      await sink.close()
    }
  })
})
