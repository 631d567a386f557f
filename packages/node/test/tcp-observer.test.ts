/**
 * A bootstrap reached over QUIC only also gets a TCP connection (holepunch/tcp-observer.ts),
 * so it observes our TCP listening port's mapping, the TCP punch's candidate (issue 19).
 */
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection } from '@libp2p/interface'
import { MAX_OBSERVER_DIALS, observerAddrs } from '../src/holepunch/tcp-observer.ts'
import type { PunchgateNode } from '../src/node.ts'
import { event, testNode } from './fixtures.ts'

function connectionFrom (addr: string): Connection {
  return { remoteAddr: multiaddr(addr) } as unknown as Connection
}

describe('TCP observers', () => {
  it('dials only plain TCP addresses on the IP the bootstrap is reached at', () => {
    const listed = [
      '/ip4/11.0.0.2/tcp/4001', '/ip4/11.0.0.2/udp/4001/quic-v1', '/ip4/11.0.0.3/tcp/4001', '/ip4/127.0.0.1/tcp/4001',
      '/ip4/11.0.0.2/tcp/4003/ws', '/ip4/11.0.0.2/tcp/4001/p2p/12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK/p2p-circuit',
      '/ip4/11.0.0.2/tcp/4004'
    ].map(a => multiaddr(a))
    const picked = observerAddrs(connectionFrom('/ip4/11.0.0.2/udp/4001/quic-v1'), listed).map(a => a.toString())
    assert.deepEqual(picked, ['/ip4/11.0.0.2/tcp/4001', '/ip4/11.0.0.2/tcp/4004'])
  })

  it('dials at most a few of them', () => {
    const listed = Array.from({ length: 10 }, (_, i) => multiaddr(`/ip4/11.0.0.2/tcp/${5000 + i}`))
    assert.equal(observerAddrs(connectionFrom('/ip4/11.0.0.2/udp/4001/quic-v1'), listed).length, MAX_OBSERVER_DIALS)
  })

  describe('a node given its bootstrap\'s QUIC address', () => {
    const nodes: PunchgateNode[] = []
    after(async () => { await Promise.all(nodes.map(async n => n.stop({ drainMs: 0 }))) })

    it('opens a TCP connection to the bootstrap beside the QUIC one', async () => {
      const boot = await testNode({ listen: ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/udp/0/quic-v1'] })
      nodes.push(boot)
      const quicAddr = boot.addrs().find(a => a.includes('/quic-v1/'))
      assert.ok(quicAddr != null)
      const node = await testNode({ bootstrap: [quicAddr] })
      nodes.push(node)
      // Subscribed first: the QUIC connection and identify may be done by the time we look.
      const tcp = event(node, 'peer.connected', e => e.peer === boot.peerId && e.addr.includes('/tcp/'))
      const connected = await tcp
      assert.equal(connected.direct, true)
      const kinds = node.swarm.getConnections().filter(c => c.remotePeer.toString() === boot.peerId).map(c => c.remoteAddr.toString().includes('/quic-v1') ? 'quic' : 'tcp')
      assert.deepEqual(kinds.sort(), ['quic', 'tcp'])
    })

    it('does not dial a bootstrap it already reaches over TCP a second time', async () => {
      const boot = nodes[0]
      assert.ok(boot != null)
      const tcpAddr = boot.addrs().find(a => a.includes('/tcp/'))
      assert.ok(tcpAddr != null)
      const node = await testNode({ bootstrap: [tcpAddr] })
      nodes.push(node)
      await event(node, 'phase.changed', e => e.to === 'ready')
      // identify has run on the bootstrap connection once the relay slot is held (it needs the protocols).
      await event(node, 'relay.reserved')
      const count = node.swarm.getConnections().filter(c => c.remotePeer.toString() === boot.peerId).length
      assert.equal(count, 1)
    })
  })
})
