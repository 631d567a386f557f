/**
 * Roles on loopback: `--role public --bootstrap` makes a second public node (DHT server,
 * relay, joined to its bootstrap's mesh); `--role private` and auto with a bootstrap stay
 * private.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import type { PunchgateNode } from '../src/node.ts'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { tls } from '@libp2p/tls'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { askReach } from '../src/reachability/client.ts'
import { ReachServer } from '../src/reachability/server.ts'
import { echoServer, event, portOf, random, roundTrip, sha256, tcpAddr, testNode, until, type EchoServer } from './fixtures.ts'

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

/** A mesh on 127.0.0.1: loopback counts as a reachable address (in production it never does). */
const LOOPBACK_IS_PUBLIC = { reprobeMs: 300_000, minGapMs: 50, loopback: true }

describe('--role auto with --bootstrap: the role follows the reach probe', () => {
  const nodes: PunchgateNode[] = []
  const start = async (...args: Parameters<typeof testNode>): Promise<PunchgateNode> => {
    const node = await testNode(...args)
    nodes.push(node)
    return node
  }
  after(async () => {
    await Promise.all(nodes.map(async n => n.stop()))
  })

  it('turns public once its bootstrap reaches its TCP port: DHT server, relay, status', async () => {
    const first = await start()
    const node = await start({ bootstrap: [tcpAddr(first)] }, { reachTiming: LOOPBACK_IS_PUBLIC })
    const changed = await event(node, 'role.changed')
    assert.equal(changed.from, 'private')
    assert.equal(changed.to, 'public')
    assert.match(changed.reason, /reached 127\.0\.0\.1:\d+/)
    const status = node.status()
    assert.equal(status.role, 'public')
    assert.equal(status.roleReason, changed.reason)
    assert.equal(node.swarm.services.dht.getMode(), 'server')
    // Private nodes can now hold a relay slot on it.
    const client = await start({ bootstrap: [tcpAddr(first)], relayMode: tcpAddr(node) })
    const reserved = await event(client, 'relay.reserved')
    assert.ok(reserved.addrs.some(a => a.includes(`/p2p/${node.peerId}/p2p-circuit`)), reserved.addrs.join(' '))
  })

  it('refuses relay reservations while private, turns public when reached, steps back after two failed probes', async t => {
    // A bootstrap whose dial-backs we decide.
    let reachable = false
    const bootstrap = await plainBootstrap(async () => reachable)
    t.after(async () => bootstrap.stop())
    const boot = bootstrap.getMultiaddrs()[0]?.toString() ?? ''
    const node = await start({ bootstrap: [boot] }, { reachTiming: { ...LOOPBACK_IS_PUBLIC, reprobeMs: 200 } })
    // Not reached: private, and it says why.
    await waitUntil(() => /could not connect/.test(node.status().roleReason ?? ''))
    assert.equal(node.status().role, 'private')
    const early = await start({ role: 'private', bootstrap: [boot], relayMode: tcpAddr(node) })
    assert.match((await event(early, 'relay.reserve-failed')).error, /PERMISSION_DENIED|protocol selection failed/i)
    await early.stop()

    reachable = true
    await event(node, 'role.changed', e => e.to === 'public')
    assert.equal(node.swarm.services.dht.getMode(), 'server')
    reachable = false
    const back = await event(node, 'role.changed', e => e.to === 'private')
    assert.match(back.reason, /could not connect .* \(2 probes in a row\)/)
    assert.equal(node.status().role, 'private')
    assert.equal(node.swarm.services.dht.getMode(), 'client')
    const late = await start({ role: 'private', bootstrap: [boot], relayMode: tcpAddr(node) })
    assert.match((await event(late, 'relay.reserve-failed')).error, /PERMISSION_DENIED|protocol selection failed/i)
  })

  it('stays private when reached only at a loopback address (its bootstrap is on this host)', async () => {
    const first = await start()
    const node = await start({ bootstrap: [tcpAddr(first)] })
    await event(first, 'reach.probed', e => e.peer === node.peerId)
    await waitUntil(() => /loopback address/.test(node.status().roleReason ?? ''))
    assert.equal(node.status().role, 'private')
  })

  it('stays private with --role private and with --listen none, and never asks', async () => {
    const first = await start()
    let asked = 0
    first.events.on('reach.probed', () => { asked++ })
    const fixed = await start({ role: 'private', bootstrap: [tcpAddr(first)] })
    const unlistening = await start({ bootstrap: [tcpAddr(first)], listen: ['none'] })
    await event(fixed, 'relay.reserved')
    await event(unlistening, 'relay.reserved')
    assert.equal(asked, 0)
    assert.equal(fixed.status().roleReason, '--role private')
    assert.equal(unlistening.status().roleReason, '--listen none')
  })
})

async function waitUntil (check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

/** A bare libp2p node that answers only the reach probe, with dial-backs decided by `reachable`. */
async function plainBootstrap (reachable: () => Promise<boolean>): Promise<Libp2p> {
  const node = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [tls()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  })
  const server = new ReachServer({ connected: () => true, dialBack: reachable, intervalMs: 10 })
  await server.serve(node)
  return node
}

describe('a bootstrap address held by another peer', () => {
  it('is not joined: the dial fails naming the peer found, the node stays out of the mesh and keeps no connection', async () => {
    const holder = await testNode()
    const named = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const addr = tcpAddr(holder).replace(`/p2p/${holder.peerId}`, `/p2p/${named}`)
    const node = await testNode({ bootstrap: [addr] })
    try {
      const failed = await event(node, 'bootstrap.dial-failed', e => e.addr === addr)
      assert.match(failed.error, new RegExp(`the peer there is ${holder.peerId}`))
      assert.equal(node.status().phase, 'joining')
      assert.equal(node.status().relay.state, 'none', 'no relay slot on the peer found there')
      await until(() => node.swarm.getConnections().filter(c => c.status === 'open').length === 0)
    } finally {
      await Promise.all([node.stop(), holder.stop()])
    }
  })
})

