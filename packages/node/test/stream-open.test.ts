/**
 * libp2p merged each new stream's protocol into the peer store, on both sides, for every
 * stream: a read, a protobuf round trip and a write per tunnelled connection, the largest
 * single cost of opening one (docs/performance.md). patches/ makes it once per protocol
 * and connection; this test fails if the patch is lost (e.g. by a libp2p upgrade).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { Libp2p } from 'libp2p'
import { socketTls } from '../src/socket-tls.ts'
import { ECHO, echoPeer } from './fixtures.ts'

/** A node whose peer store counts the merges that record ECHO. */
async function node (listen: boolean): Promise<{ libp2p: Libp2p, merges: () => number }> {
  const libp2p = await echoPeer(socketTls(), listen)
  let merges = 0
  const merge = libp2p.peerStore.merge.bind(libp2p.peerStore)
  libp2p.peerStore.merge = async (peer, data, options) => {
    if (data.protocols?.includes(ECHO) === true) merges++
    return merge(peer, data, options)
  }
  return { libp2p, merges: () => merges }
}

describe('opening streams', () => {
  it('records a stream\'s protocol in the peer store once per connection, not for every stream', async () => {
    const [dialer, listener] = await Promise.all([node(false), node(true)])
    try {
      const addr = listener.libp2p.getMultiaddrs()[0]!
      for (let i = 0; i < 20; i++) {
        const stream = await dialer.libp2p.dialProtocol(addr, ECHO)
        const echoed = new Promise<void>(resolve => stream.addEventListener('message', () => resolve(), { once: true }))
        stream.send(Uint8Array.of(i))
        await echoed
        await stream.close()
      }
      assert.equal(dialer.libp2p.getConnections().length, 1)
      assert.equal(dialer.merges(), 1, 'merges on the dialing side')
      assert.equal(listener.merges(), 1, 'merges on the listening side')
    } finally {
      await Promise.all([dialer.libp2p.stop(), listener.libp2p.stop()])
    }
  })
})
