import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import type { PunchgateNode } from '../src/node.ts'
import { connectTo, echoServer, event, portOf, random, recordingLogger, roundTrip, sha256, tcpAddr, testNode, until, type EchoServer } from './fixtures.ts'

async function key (): Promise<{ privateKey: PrivateKey, id: string }> {
  const privateKey = await generateKeyPair('Ed25519')
  return { privateKey, id: peerIdFromPrivateKey(privateKey).toString() }
}

describe('access control, expose-net and session limits', () => {
  let bootstrap: PunchgateNode
  let provider: PunchgateNode
  let alice: PunchgateNode
  let bob: PunchgateNode
  let echo: EchoServer
  /** Listens on 127.0.0.2: inside 127/8 and reachable, but outside the expose-net's 127.0.0.1/32. */
  let outside: EchoServer
  let aliceId = ''
  /** Alice's sessions open on the provider right now. */
  let aliceSessions = 0
  const port = new Map<string, number>()
  let tunnels: Record<string, string>

  before(async () => {
    echo = await echoServer()
    outside = await echoServer('127.0.0.2')
    const [a, b] = await Promise.all([key(), key()])
    bootstrap = await testNode()
    const boot = tcpAddr(bootstrap)
    // The node-wide list admits alice; "private" has its own list (bob only); every other
    // service falls back to the node-wide list.
    provider = await testNode({
      bootstrap: [boot],
      allow: [a.id],
      expose: [`echo=127.0.0.1:${echo.port}`, `private=127.0.0.1:${echo.port}?allow=${b.id}`],
      exposeNet: [`lan=127.0.0.1/32:${echo.port},${outside.port}?allow=${a.id}`, `wide=127.0.0.0/8:${outside.port}`],
      maxSessionsPerPeer: 2
    })
    provider.events.on('tunnel.opened', e => { if (e.peer === aliceId) aliceSessions++ })
    provider.events.on('tunnel.closed', e => { if (e.peer === aliceId) aliceSessions-- })
    aliceId = a.id
    await event(provider, 'service.published', e => e.name === 'echo')
    const p = provider.peerId
    tunnels = {
      aliceEcho: `${p}:echo@127.0.0.1:0`,
      alicePrivate: `${p}:private@127.0.0.1:0`,
      aliceLan: `${p}:lan@127.0.0.1:0>127.0.0.1:${echo.port}`,
      aliceLanOutsideNet: `${p}:lan@127.0.0.1:0>127.0.0.2:${outside.port}`,
      aliceLanOutsidePort: `${p}:lan@127.0.0.1:0>127.0.0.1:${echo.port === 1 ? 2 : 1}`,
      aliceLanNoDestination: `${p}:lan@127.0.0.1:0`,
      aliceEchoWithDestination: `${p}:echo@127.0.0.1:0>127.0.0.1:${echo.port}`,
      aliceWide: `${p}:wide@127.0.0.1:0>127.0.0.2:${outside.port}`,
      bobEcho: `${p}:echo@127.0.0.1:0`,
      bobPrivate: `${p}:private@127.0.0.1:0`,
      bobLan: `${p}:lan@127.0.0.1:0>127.0.0.1:${echo.port}`
    }
    const aliceTunnels = Object.entries(tunnels).filter(([k]) => k.startsWith('alice')).map(([, v]) => v)
    const bobTunnels = Object.entries(tunnels).filter(([k]) => k.startsWith('bob')).map(([, v]) => v)
    const aliceByName = `lan@127.0.0.1:0>127.0.0.1:${echo.port}`
    alice = await testNode({ bootstrap: [boot], tunnel: aliceTunnels, tunnelByName: [aliceByName] }, { privateKey: a.privateKey })
    aliceTunnels.push(aliceByName)
    tunnels.aliceLanByName = aliceByName
    bob = await testNode({ bootstrap: [boot], tunnel: bobTunnels }, { privateKey: b.privateKey })
    for (const [who, node] of [['alice', alice], ['bob', bob]] as const) {
      for (const t of node.tunnels()) port.set(`${who}:${t.tunnel}`, portOf(t.bind))
    }
    await Promise.all([
      ...aliceTunnels.map(async id => event(alice, 'tunnel.activated', e => e.tunnel === id)),
      ...bobTunnels.map(async id => event(bob, 'tunnel.activated', e => e.tunnel === id))
    ])
  })

  after(async () => {
    await Promise.all([alice?.stop(), bob?.stop(), provider?.stop(), bootstrap?.stop()])
    await echo?.close()
    await outside?.close()
  })

  const portFor = (who: 'alice' | 'bob', tunnel: keyof typeof tunnels): number => port.get(`${who}:${tunnels[tunnel]}`) ?? 0

  /** Connects through a tunnel expected to be refused; returns the client and server reasons. */
  async function refused (node: PunchgateNode, who: 'alice' | 'bob', tunnel: keyof typeof tunnels): Promise<{ client: string, server: string, message?: string }> {
    const id = tunnels[tunnel] ?? ''
    const client = event(node, 'tunnel.rejected', e => e.tunnel === id)
    const server = event(provider, 'tunnel.rejected', e => e.peer === node.peerId)
    const echoed = await roundTrip(portFor(who, tunnel), Buffer.from('hello')).catch(() => Buffer.alloc(0))
    assert.equal(echoed.length, 0, 'nothing comes back through a refused tunnel')
    const [c, s] = await Promise.all([client, server])
    return { client: c.reason, server: s.reason, ...(c.message != null ? { message: c.message } : {}) }
  }

  it('warns at start about each service opened to every peer, and only those', async () => {
    const log = recordingLogger()
    const node = await testNode({ allowAny: true, expose: ['open=127.0.0.1:1', `closed=127.0.0.1:2?allow=${alice.peerId}`], exposeNet: ['net=10.0.0.0/8:22'] }, { logger: log })
    await node.stop()
    const warned = log.records.filter(r => r.event === 'service.unrestricted').map(r => r.name)
    assert.deepEqual(warned, ['open', 'net'])
    const withAllow = recordingLogger()
    await (await testNode({ allow: [alice.peerId], expose: ['listed=127.0.0.1:1', 'anyone=127.0.0.1:2?allow=any'] }, { logger: withAllow })).stop()
    assert.deepEqual(withAllow.records.filter(r => r.event === 'service.unrestricted').map(r => r.name), ['anyone'])
  })

  it('lets a peer on the node-wide list use a service without a list of its own', async () => {
    const data = random(64 * 1024)
    assert.equal(sha256(await roundTrip(portFor('alice', 'aliceEcho'), data)), sha256(data))
  })

  it('refuses a peer not on the list, on its peer id, before connecting to the target', async () => {
    const before = echo.connections()
    const { client, server } = await refused(bob, 'bob', 'bobEcho')
    assert.equal(client, 'not-allowed')
    assert.equal(server, 'not-allowed')
    assert.equal(echo.connections(), before, 'the target never saw the refused peer')
  })

  it('applies a service\'s own ?allow= list instead of the node-wide one', async () => {
    const data = random(1000)
    assert.equal(sha256(await roundTrip(portFor('bob', 'bobPrivate'), data)), sha256(data))
    const before = echo.connections()
    assert.equal((await refused(alice, 'alice', 'alicePrivate')).client, 'not-allowed')
    assert.equal((await refused(bob, 'bob', 'bobLan')).client, 'not-allowed')
    assert.equal(echo.connections(), before)
  })

  it('connects an expose-net destination inside the allowed networks and ports, found by peer id or by name', async () => {
    const data = random(100 * 1024)
    assert.equal(sha256(await roundTrip(portFor('alice', 'aliceLan'), data)), sha256(data))
    assert.equal(sha256(await roundTrip(portFor('alice', 'aliceLanByName'), data)), sha256(data))
    assert.equal(sha256(await roundTrip(portFor('alice', 'aliceWide'), data)), sha256(data))
  })

  it('refuses destinations outside the networks or ports before any connection is made', async () => {
    const before = outside.connections()
    assert.equal((await refused(alice, 'alice', 'aliceLanOutsideNet')).client, 'destination-not-allowed')
    assert.equal(outside.connections(), before, 'the address outside the network was never connected to')
    assert.equal((await refused(alice, 'alice', 'aliceLanOutsidePort')).client, 'destination-not-allowed')
  })

  it('refuses an expose-net request without a destination, and a destination for a fixed service', async () => {
    const none = await refused(alice, 'alice', 'aliceLanNoDestination')
    assert.equal(none.client, 'bad-request')
    assert.match(none.message ?? '', /needs a destination/)
    const extra = await refused(alice, 'alice', 'aliceEchoWithDestination')
    assert.equal(extra.client, 'bad-request')
    assert.match(extra.message ?? '', /fixed target/)
  })

  it('limits sessions per peer, and frees a slot when a session ends', async () => {
    // Earlier tests' sessions end on the provider a moment after their clients see the end.
    await until(() => aliceSessions === 0)
    const held = [await connectTo(portFor('alice', 'aliceEcho')), await connectTo(portFor('alice', 'aliceEcho'))]
    // Each held connection is open end to end once its first byte comes back.
    for (const socket of held) {
      socket.write('x')
      await once(socket, 'data')
    }
    const before = echo.connections()
    assert.equal((await refused(alice, 'alice', 'aliceEcho')).client, 'too-many-sessions')
    assert.equal(echo.connections(), before)

    const freed = event(provider, 'tunnel.closed', e => e.peer === alice.peerId)
    held[0]?.end()
    await freed
    const data = random(1000)
    assert.equal(sha256(await roundTrip(portFor('alice', 'aliceEcho'), data)), sha256(data))
    held[1]?.destroy()
  })
})
