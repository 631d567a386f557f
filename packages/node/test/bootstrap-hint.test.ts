import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { bootstrapHint } from '../src/bootstrap-hint.ts'
import { testNode, recordingLogger, event } from './fixtures.ts'

const ID = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN'

describe('bootstrap hint', () => {
  it('gives the public addresses only, each with its peer id, when the node has one', () => {
    const hint = bootstrapHint([
      `/ip4/127.0.0.1/tcp/4001/p2p/${ID}`,
      `/ip4/192.168.1.5/tcp/4001/p2p/${ID}`,
      `/ip4/8.8.4.4/tcp/4001/p2p/${ID}`,
      `/ip4/8.8.4.4/udp/4001/quic-v1/p2p/${ID}`
    ])
    assert.deepEqual(hint, { addrs: [`/ip4/8.8.4.4/tcp/4001/p2p/${ID}`, `/ip4/8.8.4.4/udp/4001/quic-v1/p2p/${ID}`], reachable: true })
  })

  it('says which --announce to start with when every address is private or loopback', () => {
    const hint = bootstrapHint([`/ip4/10.0.0.2/tcp/4001/p2p/${ID}`, `/ip4/127.0.0.1/tcp/4001/p2p/${ID}`])
    assert.deepEqual(hint, {
      addrs: [`/ip4/10.0.0.2/tcp/4001/p2p/${ID}`, `/ip4/127.0.0.1/tcp/4001/p2p/${ID}`],
      reachable: false,
      announce: '/ip4/<public ip>/tcp/4001'
    })
  })

  it('is logged by a public node at start with its own announced address, and never by a private one', async () => {
    const logger = recordingLogger()
    const boot = await testNode({ announce: ['/ip4/8.8.4.4/tcp/4001'] }, { logger })
    try {
      const hint = logger.records.find(r => r.event === 'node.bootstrap-hint')
      assert.deepEqual(hint?.addrs, [`/ip4/8.8.4.4/tcp/4001/p2p/${boot.peerId}`])
      assert.equal(hint?.reachable, true)
      const privateLogger = recordingLogger()
      const listen = boot.status().listenAddrs.find(a => a.startsWith('/ip4/127.0.0.1/tcp/'))
      const peer = await testNode({ bootstrap: [`${listen}/p2p/${boot.peerId}`] }, { logger: privateLogger })
      await event(peer, 'phase.changed', e => e.to === 'ready')
      await peer.stop()
      assert.equal(privateLogger.records.some(r => r.event === 'node.bootstrap-hint'), false)
    } finally {
      await boot.stop()
    }
  })
})
