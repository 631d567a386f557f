/**
 * A relay listening on every interface hands out no loopback addresses, and a client
 * announces no circuit through one (holepunch/candidates.ts announceable; issue 19: one
 * roaming run connected through `/ip4/127.0.0.1/tcp/4001/p2p/RELAY/p2p-circuit`).
 * Both listen on 0.0.0.0; every connection stays on loopback (the client dials 127.0.0.1).
 */
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { networkInterfaces } from 'node:os'
import type { PunchgateNode } from '../src/node.ts'
import { event, testNode } from './fixtures.ts'

const hasOtherInterface = Object.values(networkInterfaces()).flat().some(i => i != null && i.family === 'IPv4' && !i.internal)

describe('announced addresses', { skip: hasOtherInterface ? false : 'this host has no IPv4 interface besides loopback' }, () => {
  const nodes: PunchgateNode[] = []
  after(async () => { await Promise.all(nodes.map(async n => n.stop({ drainMs: 0 }))) })

  it('a relay on 0.0.0.0 announces no loopback address, and its client no circuit through one', async () => {
    const relay = await testNode({ listen: ['/ip4/0.0.0.0/tcp/0'], role: 'public' })
    nodes.push(relay)
    assert.deepEqual(relay.addrs().filter(a => a.startsWith('/ip4/127.')), [])
    const port = relay.swarm.services.internals.transportManager.getAddrs()[0]?.getComponents()[1]?.value
    const client = await testNode({ listen: ['/ip4/0.0.0.0/tcp/0'], bootstrap: [`/ip4/127.0.0.1/tcp/${port}/p2p/${relay.peerId}`] })
    nodes.push(client)
    await event(client, 'relay.reserved')
    const circuits = client.addrs().filter(a => a.includes('/p2p-circuit'))
    assert.ok(circuits.length > 0, `the client holds a circuit address: ${client.addrs().join(' ')}`)
    assert.deepEqual(circuits.filter(a => a.startsWith('/ip4/127.')), [])
    assert.deepEqual(client.addrs().filter(a => a.startsWith('/ip4/127.')), [])
  })
})
