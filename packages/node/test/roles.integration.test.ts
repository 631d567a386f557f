/**
 * Roles on loopback: `--role public --bootstrap` makes a second public node (DHT server,
 * relay, joined to its bootstrap's mesh); `--role private` and auto with a bootstrap stay
 * private.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import type { PunchgateNode } from '../src/node.ts'
import { askReach } from '../src/reachability/client.ts'
import { echoServer, event, portOf, random, roundTrip, sha256, tcpAddr, testNode, type EchoServer } from './fixtures.ts'

describe('--role public with --bootstrap: a second public node', () => {
  let first: PunchgateNode
  let second: PunchgateNode
  let echo: EchoServer
  const nodes: PunchgateNode[] = []
  const start = async (...args: Parameters<typeof testNode>): Promise<PunchgateNode> => {
    const node = await testNode(...args)
    nodes.push(node)
    return node
  }

  before(async () => {
    echo = await echoServer()
    first = await testNode()
    second = await testNode({ role: 'public', bootstrap: [tcpAddr(first)] })
  })

  after(async () => {
    await Promise.all([...nodes, second, first].map(async n => n?.stop()))
    await echo?.close()
  })

  it('is public at once, a DHT server, and joins its bootstrap', async () => {
    const status = second.status()
    assert.equal(status.role, 'public')
    assert.equal(status.phase, 'ready')
    assert.equal(second.swarm.services.dht.getMode(), 'server')
    if (second.swarm.getConnections(first.swarm.peerId).length === 0) {
      await event(second, 'peer.connected', e => e.peer === first.peerId)
    }
    assert.equal(second.status().relay.state, 'none', 'a public node reserves no relay slot')
  })

  it('relays for a private node', async () => {
    const node = await start({ bootstrap: [tcpAddr(first)], relayMode: tcpAddr(second) })
    const reserved = await event(node, 'relay.reserved')
    assert.ok(reserved.addrs.some(a => a.includes(`/p2p/${second.peerId}/p2p-circuit`)), reserved.addrs.join(' '))
  })

  it('answers name lookups for a service published through the first public node', async () => {
    const provider = await start({ bootstrap: [tcpAddr(first)], allowAny: true, expose: [`echo=127.0.0.1:${echo.port}`] })
    await event(provider, 'service.published', e => e.name === 'echo')
    // A consumer that knows only the second public node finds the provider through it.
    const consumer = await start({ bootstrap: [tcpAddr(second)], tunnelByName: ['echo@127.0.0.1:0'] })
    await event(consumer, 'tunnel.activated')
    const data = random(64 * 1024)
    assert.equal(sha256(await roundTrip(portOf(consumer.tunnels()[0]?.bind ?? ''), data)), sha256(data))
  })

  it('answers the reach probe: dials the asker back on its TCP listen port', async () => {
    const node = await start({ role: 'private', bootstrap: [tcpAddr(second)] })
    if (node.swarm.getConnections(second.swarm.peerId).length === 0) await event(node, 'peer.connected', e => e.peer === second.peerId)
    const port = Number(multiaddr(tcpAddr(node)).getComponents().find(c => c.name === 'tcp')?.value)
    const probed = event(second, 'reach.probed', e => e.peer === node.peerId)
    assert.deepEqual(await askReach(node.swarm, second.swarm.peerId, [port]), { ip: '127.0.0.1', reachable: [port], unreachable: [] })
    assert.deepEqual(await probed, { peer: node.peerId, ip: '127.0.0.1', reachable: [port], unreachable: [] })
  })

  it('--role private and auto with a bootstrap start private', async () => {
    for (const role of ['private', 'auto']) {
      const node = await start({ role, bootstrap: [tcpAddr(first)] })
      assert.equal(node.status().role, 'private', role)
      assert.equal(node.swarm.services.dht.getMode(), 'client', role)
    }
  })
})
