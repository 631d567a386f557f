import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { Libp2p } from 'libp2p'
import { noise } from '@chainsafe/libp2p-noise'
import { multiaddr } from '@multiformats/multiaddr'
import { echoPeer, tcpAddr, testNode } from './fixtures.ts'

/** A peer that speaks Noise and not TLS. */
async function noiseOnly (): Promise<Libp2p> {
  return echoPeer(noise(), true)
}

describe('Noise, loaded on first use (lazy-noise.ts)', () => {
  it('secures connections both ways with a peer that has no TLS', async () => {
    const node = await testNode()
    const [dialer, listener] = await Promise.all([noiseOnly(), noiseOnly()])
    try {
      const inbound = await dialer.dial(multiaddr(tcpAddr(node)))
      assert.equal(inbound.encryption, '/noise')
      assert.equal(inbound.remotePeer.toString(), node.peerId)

      const outbound = await node.swarm.dial(listener.getMultiaddrs()[0]!)
      assert.equal(outbound.encryption, '/noise')
      assert.ok(outbound.remotePeer.equals(listener.peerId))
    } finally {
      await Promise.all([node.stop(), dialer.stop(), listener.stop()])
    }
  })
})
