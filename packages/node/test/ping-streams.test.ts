/**
 * libp2p's connection monitor pings every connection and cuts the connection when a ping
 * fails; the RTT reporter (rtt.ts) pings too. With one ping stream allowed per connection,
 * overlapping pings failed and healthy connections were cut under load (swarm.ts).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { tcpAddr, testNode } from './fixtures.ts'

describe('pings on one connection', () => {
  it('two pings at once both succeed, and the connection stays up', async () => {
    const [a, b] = await Promise.all([testNode(), testNode()])
    try {
      const connection = await a.swarm.dial(multiaddr(tcpAddr(b)))
      const peer = peerIdFromString(b.peerId)
      const rtts = await Promise.all([a.swarm.services.ping.ping(peer), a.swarm.services.ping.ping(peer), a.swarm.services.ping.ping(peer)])
      for (const rtt of rtts) assert.ok(rtt >= 0)
      assert.equal(connection.status, 'open')
      assert.equal(a.swarm.getConnections(peer).length, 1)
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
  })
})
