/**
 * `--max-connections`: the cap on open connections, all peers together. A public node's
 * default follows its relay slots (each holds a connection), so `--relay-max-reservations
 * 1000` is not silently held to libp2p's 300; past the cap, new peers are refused.
 */
import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { Libp2p } from 'libp2p'
import { multiaddr } from '@multiformats/multiaddr'
import { validateConfig } from '../src/config.ts'
import type { PunchgateNode } from '../src/node.ts'
import { plainNode, tcpAddr, testNode, until } from './fixtures.ts'

const RELAY = '/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWRQEFTc2NJDD3KQHQt1ZQcMUGfeBdUXkFUfB3RnrhkZua'

describe('--max-connections', () => {
  it('defaults to 300, or on a node that may be public to its relay slots plus 100 when that is more', () => {
    assert.equal(validateConfig({}).maxConnections, 300)
    assert.equal(validateConfig({ relayMaxReservations: '128' }).maxConnections, 300)
    assert.equal(validateConfig({ relayMaxReservations: '1000' }).maxConnections, 1100)
    assert.equal(validateConfig({ bootstrap: [RELAY], relayMaxReservations: '1000' }).maxConnections, 1100, 'auto may become public')
    assert.equal(validateConfig({ bootstrap: [RELAY], role: 'private' }).maxConnections, 300)
  })

  it('takes the flag over the default, and refuses what is not a positive whole number', () => {
    assert.equal(validateConfig({ maxConnections: '50', relayMaxReservations: '1000' }).maxConnections, 50)
    assert.equal(validateConfig({ maxConnections: 2000 }).maxConnections, 2000)
    assert.throws(() => validateConfig({ maxConnections: '0' }), /max-connections.*positive whole number/)
    assert.throws(() => validateConfig({ maxConnections: 'lots' }), /max-connections/)
  })

  describe('on a running node', () => {
    let node: PunchgateNode
    const peers: Libp2p[] = []
    after(async () => {
      await Promise.all(peers.map(async p => p.stop()))
      await node?.stop({ drainMs: 0 })
    })

    it('refuses a connection past the cap and takes one again once a slot is free', async () => {
      node = await testNode({ maxConnections: 2 })
      const addr = multiaddr(tcpAddr(node))
      for (let i = 0; i < 3; i++) {
        const peer = await plainNode()
        await peer.start()
        peers.push(peer)
      }
      const [first, second, third] = peers as [Libp2p, Libp2p, Libp2p]
      await first.dial(addr)
      await second.dial(addr)
      await assert.rejects(third.dial(addr), 'a third peer past --max-connections 2')
      assert.equal(node.swarm.getConnections().length, 2)

      await first.hangUp(node.swarm.peerId)
      await until(() => node.swarm.getConnections().length === 1)
      await third.dial(addr)
      // The dialer is done a moment before the node has upgraded its side.
      await until(() => node.swarm.getPeers().some(p => p.equals(third.peerId)))
    })
  })
})
