/**
 * relays/dial.ts: a peer whose known direct address swallows the connection (as a NAT's
 * filtered mapping or a foreign LAN address does) is reached through a relay after the
 * head start, not after libp2p's per-address timeout (6 s) and the dial timeout.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server, type Socket } from 'node:net'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PunchgateNode } from '../src/node.ts'
import { dialPeer } from '../src/relays/dial.ts'
import { RELAY_DIAL_HEAD_START_MS } from '../src/constants.ts'
import { event, tcpAddr, testNode } from './fixtures.ts'

describe('dialing a peer behind NAT', () => {
  let relay: PunchgateNode
  let provider: PunchgateNode
  let consumer: PunchgateNode
  let swallow: Server
  const held: Socket[] = []

  before(async () => {
    // Accepts TCP connections and never says a word: the security handshake waits in vain.
    swallow = createServer(socket => { held.push(socket) })
    swallow.listen(0, '127.0.0.1')
    await once(swallow, 'listening')
    relay = await testNode()
    provider = await testNode({ bootstrap: [tcpAddr(relay)], listen: ['none'] })
    await event(provider, 'relay.reserved')
    consumer = await testNode({ bootstrap: [tcpAddr(relay)] })
    await event(consumer, 'phase.changed', e => e.to === 'ready')
  })

  after(async () => {
    for (const socket of held) socket.destroy()
    swallow.close()
    await Promise.all([consumer, provider, relay].map(async n => n?.stop({ drainMs: 0 })))
  })

  it('tries the known address first, then connects through the relay after the head start', async () => {
    const port = (swallow.address() as AddressInfo).port
    await consumer.swarm.peerStore.merge(peerIdFromString(provider.peerId), { multiaddrs: [multiaddr(`/ip4/127.0.0.1/tcp/${port}`)] })
    const started = Date.now()
    const { connection, errors } = await dialPeer(consumer.swarm, provider.peerId, () => [tcpAddr(relay)], AbortSignal.timeout(20_000))
    const ms = Date.now() - started
    assert.ok(connection != null, errors.join('; '))
    assert.match(connection.remoteAddr.toString(), new RegExp(`/p2p/${relay.peerId}/p2p-circuit`))
    assert.ok(held.length > 0, 'the known address was dialed')
    assert.ok(ms >= RELAY_DIAL_HEAD_START_MS - 50 && ms < 4_000, `connected after ${ms} ms`)
  })

  it('gives up soon after every relay said no, not after the dial timeout: a peer that holds no slot is down', async () => {
    const port = (swallow.address() as AddressInfo).port
    // A peer id nobody runs: the relay has no reservation for it.
    const gone = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    await consumer.swarm.peerStore.merge(peerIdFromString(gone), { multiaddrs: [multiaddr(`/ip4/127.0.0.1/tcp/${port}`)] })
    const started = Date.now()
    const { connection, errors } = await dialPeer(consumer.swarm, gone, () => [tcpAddr(relay)], AbortSignal.timeout(20_000), { directAfterRelaysMs: 500 })
    const ms = Date.now() - started
    assert.equal(connection, undefined)
    assert.ok(errors.some(e => /NO_RESERVATION/.test(e)), errors.join('; '))
    assert.ok(ms < RELAY_DIAL_HEAD_START_MS + 3_000, `gave up after ${ms} ms`)
  })

  it('an open connection is used as it is', async () => {
    const before = consumer.swarm.getConnections(peerIdFromString(provider.peerId)).length
    const { connection } = await dialPeer(consumer.swarm, provider.peerId, () => [tcpAddr(relay)], AbortSignal.timeout(5_000))
    assert.ok(connection != null)
    assert.equal(consumer.swarm.getConnections(peerIdFromString(provider.peerId)).length, before)
  })
})
