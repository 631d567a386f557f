import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import type { PunchgateNode } from '../src/node.ts'
import { generateSwarmKey } from '../src/swarm-key.ts'
import { echoServer, event, portOf, random, roundTrip, sha256, tcpAddr, testNode, type EchoServer } from './fixtures.ts'

describe('private mesh: --swarm-key', () => {
  const key = generateSwarmKey()
  let bootstrap: PunchgateNode
  let provider: PunchgateNode
  let consumer: PunchgateNode
  let echo: EchoServer
  const strangers: PunchgateNode[] = []
  /** Every peer that ever got a connection to the bootstrap or the provider. */
  const connected = new Set<string>()

  before(async () => {
    echo = await echoServer()
    bootstrap = await testNode({ swarmKey: key })
    bootstrap.events.on('peer.connected', e => connected.add(e.peer))
    provider = await testNode({ swarmKey: key, bootstrap: [tcpAddr(bootstrap)], expose: [`echo=127.0.0.1:${echo.port}`] })
    provider.events.on('peer.connected', e => connected.add(e.peer))
    await event(provider, 'service.published', e => e.name === 'echo')
    consumer = await testNode({ swarmKey: key, bootstrap: [tcpAddr(bootstrap)], tunnelByName: ['echo@127.0.0.1:0'] })
    await event(consumer, 'tunnel.activated')
  })

  after(async () => {
    await Promise.all([consumer, provider, bootstrap, ...strangers].map(async n => n?.stop()))
    await echo?.close()
  })

  it('tunnels between peers that share the key', async () => {
    const data = random(256 * 1024)
    const port = portOf(consumer.tunnels()[0]?.bind ?? '')
    assert.equal(sha256(await roundTrip(port, data)), sha256(data))
  })

  for (const [what, swarmKey] of [['without a key', undefined], ['with another key', generateSwarmKey()]] as const) {
    it(`never lets a peer ${what} complete a connection`, async () => {
      const stranger = await testNode(swarmKey != null ? { swarmKey } : {})
      strangers.push(stranger)
      for (const target of [bootstrap, provider]) {
        await assert.rejects(stranger.swarm.dial(multiaddr(tcpAddr(target)), { signal: AbortSignal.timeout(10_000) }))
        assert.equal(target.swarm.getConnections(stranger.swarm.peerId).length, 0)
      }
      assert.equal(connected.has(stranger.peerId), false, 'no peer.connected for the stranger, ever')
      // And the other way round: a member cannot be talked into a connection to it either.
      await assert.rejects(provider.swarm.dial(multiaddr(tcpAddr(stranger)), { signal: AbortSignal.timeout(10_000) }))
      assert.equal(stranger.swarm.getConnections().length, 0)
    })
  }
})

describe('relay choice', () => {
  let bootstrap: PunchgateNode
  let relay: PunchgateNode
  const nodes: PunchgateNode[] = []
  const start = async (...args: Parameters<typeof testNode>): Promise<PunchgateNode> => {
    const node = await testNode(...args)
    nodes.push(node)
    return node
  }

  before(async () => {
    bootstrap = await testNode()
    relay = await testNode({ relayMaxReservations: 1 })
  })

  after(async () => {
    await Promise.all([...nodes, relay, bootstrap].map(async n => n?.stop()))
  })

  it('off: never reserves a relay slot, has no relayed address, still publishes its services', async () => {
    const node = await start({ bootstrap: [tcpAddr(bootstrap)], relayMode: 'off', allowAny: true, expose: ['echo=127.0.0.1:1'] })
    let reserved = false
    node.events.on('relay.reserved', () => { reserved = true })
    await event(node, 'service.published')
    assert.equal(node.status().relay.state, 'off')
    assert.equal(reserved, false)
    assert.deepEqual(node.addrs().filter(a => a.includes('/p2p-circuit')), [])
    await assert.rejects(node.swarm.dial(multiaddr(`${tcpAddr(bootstrap)}/p2p-circuit/p2p/${relay.peerId}`)),
      'no relay transport: a relayed dial cannot even start')
  })

  it('a multiaddr: reserves on that relay, not on the bootstrap', async () => {
    const relayAddr = tcpAddr(relay)
    const node = await start({ bootstrap: [tcpAddr(bootstrap)], relayMode: relayAddr })
    const reserved = await event(node, 'relay.reserved')
    assert.equal(reserved.relay, relayAddr)
    assert.ok(reserved.addrs.length > 0)
    assert.ok(reserved.addrs.every(a => a.includes(`/p2p/${relay.peerId}/p2p-circuit`)), reserved.addrs.join(' '))
  })

  it('--relay-max-reservations: a full relay refuses the next reservation', async () => {
    // The previous test holds the one slot.
    const node = await start({ bootstrap: [tcpAddr(bootstrap)], relayMode: tcpAddr(relay) })
    const failed = await event(node, 'relay.reserve-failed')
    assert.equal(failed.relay, tcpAddr(relay))
  })
})

describe('--relay-allow allowed', () => {
  let relay: PunchgateNode
  let allowed: PunchgateNode
  let other: PunchgateNode
  let friend: PunchgateNode
  let reserved: Promise<{ relay: string, addrs: string[] }>
  let refused: Promise<{ relay: string, error: string }>

  before(async () => {
    const { generateKeyPair } = await import('@libp2p/crypto/keys')
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
    const privateKey = await generateKeyPair('Ed25519')
    const friendKey = await generateKeyPair('Ed25519')
    relay = await testNode({ allow: [privateKey, friendKey].map(k => peerIdFromPrivateKey(k).toString()), relayAllow: 'allowed' })
    friend = await testNode({}, { privateKey: friendKey })
    allowed = await testNode({ bootstrap: [tcpAddr(relay)] }, { privateKey })
    reserved = event(allowed, 'relay.reserved')
    other = await testNode({ bootstrap: [tcpAddr(relay)] })
    refused = event(other, 'relay.reserve-failed')
  })

  after(async () => {
    await Promise.all([friend, other, allowed, relay].map(async n => n?.stop()))
  })

  it('reserves a slot for an allowed peer and refuses everyone else', async () => {
    assert.ok((await reserved).addrs.length > 0)
    assert.match((await refused).error, /PERMISSION_DENIED/)
    assert.deepEqual(other.addrs().filter(a => a.includes('/p2p-circuit')), [])
  })

  it('relays between allowed peers, and nothing for a peer that is not allowed, even to an allowed one', async () => {
    const circuit = allowed.addrs().find(a => a.includes('/p2p-circuit'))
    assert.ok(circuit != null)
    await assert.rejects(other.swarm.dial(multiaddr(circuit), { signal: AbortSignal.timeout(10_000) }), /PERMISSION_DENIED/)
    const relayed = await friend.swarm.dial(multiaddr(circuit), { signal: AbortSignal.timeout(10_000) })
    assert.equal(relayed.remotePeer.toString(), allowed.peerId)
  })
})
