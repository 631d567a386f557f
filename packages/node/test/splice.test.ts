/**
 * Spike: a spliced path through a public node. The relay pairs two TCP sockets by token
 * and copies bytes; the ends run libp2p (TLS, yamux) end to end over them.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import { startSplicer } from '../src/splice/splicer.ts'
import { acceptSplices, serveSplices, spliceTo } from '../src/splice/service.ts'
import { echoServer, event, portOf, random, roundTrip, sha256, tcpAddr, testNode } from './fixtures.ts'

describe('splice (spike)', () => {
  it('gives two private peers a connection through the relay that the relay only copies', { timeout: 60_000 }, async (t) => {
    const echo = await echoServer()
    const relay = await testNode()
    const splicer = await startSplicer({ host: '127.0.0.1', port: 0, pairTimeoutMs: 5_000, maxPairs: 4, maxBytesPerPair: 2 ** 32, maxDurationMs: 60_000, maxUnpaired: 8 })
    const reservations = (relay.swarm.services as unknown as { relay: { reservations: { has: (peer: PeerId) => boolean } } }).relay.reservations
    await serveSplices(relay.swarm, splicer, (_from, to) => reservations.has(to))
    const relayAddr = tcpAddr(relay)
    const provider = await testNode({ listen: ['none'], bootstrap: [relayAddr], expose: [`echo=127.0.0.1:${echo.port}`] })
    await acceptSplices(provider.swarm, peer => peer.equals(relay.swarm.peerId))
    await event(provider, 'service.published')
    const consumer = await testNode({ listen: ['none'], bootstrap: [relayAddr], tunnel: [`${provider.peerId}:echo@127.0.0.1:0`] })
    try {
      assert.equal((await event(consumer, 'tunnel.activated')).path, 'relay')
      // A peer without a reservation on the relay is not spliced to; one that does not take
      // splices (the consumer here runs no acceptSplices) refuses.
      const stranger = await generateKeyPair('Ed25519')
      await assert.rejects(spliceTo(consumer.swarm, relay.swarm.peerId, peerIdFromPrivateKey(stranger)), /not-allowed/)
      await assert.rejects(spliceTo(provider.swarm, relay.swarm.peerId, peerIdFromString(consumer.peerId)), /refused/)
      assert.equal(splicer.active(), 0)
      const spliced = await spliceTo(consumer.swarm, relay.swarm.peerId, peerIdFromString(provider.peerId))
      t.diagnostic(`spliced connection ${spliced.remoteAddr.toString()} limits=${JSON.stringify(spliced.limits)}`)
      assert.equal(spliced.limits, undefined)
      assert.equal(splicer.active(), 1)
      const data = random(8 * 1024 * 1024)
      const echoed = await roundTrip(portOf(consumer.tunnels()[0]?.bind ?? ''), data)
      assert.equal(sha256(echoed), sha256(data))
      t.diagnostic(`the splicer copied ${splicer.copied()} bytes`)
      assert.ok(splicer.copied() > 2 * data.byteLength, 'the tunnel did not take the spliced connection')
      const conns = consumer.swarm.getConnections(peerIdFromString(provider.peerId))
      t.diagnostic(`connections: ${conns.map(c => `${c.remoteAddr.toString()} streams=${c.streams.length} limited=${c.limits != null}`).join('; ')}`)
      t.diagnostic(`tunnel: ${JSON.stringify(consumer.tunnels()[0])}`)
    } finally {
      await Promise.all([consumer.stop({ drainMs: 0 }), provider.stop({ drainMs: 0 })])
      await relay.stop({ drainMs: 0 })
      await splicer.close()
      await echo.close()
    }
  })
})
