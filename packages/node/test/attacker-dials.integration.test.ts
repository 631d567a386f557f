/**
 * Nothing a stranger asks makes us dial (issue 18, item 3). Bare libp2p peers speak
 * `/punchgate/punch/1.0.0` (holepunch/wire.ts) to a node behind a relay: a stranger's request
 * is reset unread, over a relay or not, and a TCP sink on 127.0.0.1 never sees a connection;
 * a peer the node serves gets its punch answered, at most PUNCH_ROUNDS_PER_MINUTE rounds a
 * minute, and only to candidates the filter lets through.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection, Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { PUNCH_PROTOCOL, PUNCH_REFUSALS_LOGGED_PER_MINUTE, PUNCH_ROUNDS_PER_MINUTE, type PunchgateNode } from '../src/index.ts'
import { decodePunch, encodePunch, type PunchMessage } from '../src/holepunch/wire.ts'
import { candidateOf, echoServer, event, tcpAddr, testNode, type EchoServer } from './fixtures.ts'

/** A bare peer that can dial through a relay and listens on loopback, so a node can dial it back. */
async function barePeer (): Promise<Libp2p> {
  return createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  })
}

/** A punch stream on `connection`, speaking the wire format by hand. */
async function punchStream (connection: Connection): Promise<{ stream: Stream, write: (m: PunchMessage) => Promise<void>, read: () => Promise<PunchMessage> }> {
  const stream = await connection.newStream(PUNCH_PROTOCOL, { runOnLimitedConnection: true })
  const lp = lpStream(stream)
  const signal = AbortSignal.timeout(10_000)
  return {
    stream,
    write: async m => { await lp.write(encodePunch(m), { signal }) },
    read: async () => decodePunch((await lp.read({ signal })).subarray())
  }
}

/** Sends a connect and a sync as an attacker would, without waiting for the answer; resolves once the node has reset the stream. */
async function refusedRequest (connection: Connection, addrs: string[]): Promise<void> {
  let wire: Awaited<ReturnType<typeof punchStream>>
  try {
    wire = await punchStream(connection)
    await wire.write({ type: 'connect', addrs, attempt: 1 })
    await wire.write({ type: 'sync' })
  } catch {
    return // reset while opening or writing: refused
  }
  await assert.rejects(wire.read(), 'the node answered a request it should have refused')
}

describe('a stranger cannot make a node dial', () => {
  let sink: EchoServer
  let relay: PunchgateNode
  /** Lets loopback candidates through (as a LAN would), so only the peer check stands between a stranger and the sink. */
  let open: PunchgateNode
  /** Default candidate filter. */
  let strict: PunchgateNode
  let friend: Libp2p
  let counter: Libp2p
  let stranger: Libp2p
  let relayAddr: string
  const sinkAddr = (): string => `/ip4/127.0.0.1/tcp/${sink.port}`
  const viaRelay = async (from: Libp2p, to: PunchgateNode): Promise<Connection> =>
    from.dial(multiaddr(`${relayAddr}/p2p-circuit/p2p/${to.peerId}`))

  before(async () => {
    sink = await echoServer()
    ;[friend, counter, stranger] = await Promise.all([barePeer(), barePeer(), barePeer()])
    relay = await testNode()
    relayAddr = tcpAddr(relay)
    const serves = { bootstrap: [relayAddr], expose: [`echo=127.0.0.1:${sink.port}`], allow: [friend.peerId.toString(), counter.peerId.toString()] }
    ;[open, strict] = await Promise.all([testNode(serves, { loopbackCandidates: true }), testNode(serves)])
    await Promise.all([event(open, 'relay.reserved'), event(strict, 'relay.reserved')])
  })

  after(async () => {
    await Promise.all([friend, counter, stranger].map(async p => p?.stop()))
    await Promise.all([open, strict, relay].map(async n => n?.stop({ drainMs: 0 })))
    await sink?.close()
  })

  it('a stranger\'s punch request over a relayed connection is reset unread; the loopback sink sees nothing', async () => {
    const refused = event(open, 'holepunch.refused', f => f.peer === stranger.peerId.toString())
    const connection = await viaRelay(stranger, open)
    assert.equal(connection.limits != null || connection.remoteAddr.toString().includes('/p2p-circuit'), true, 'the stranger is on a relayed connection')
    await refusedRequest(connection, [sinkAddr()])
    assert.equal((await refused).reason, 'not-known')
    assert.equal(sink.connections(), 0, 'the node connected to the sink the stranger named')
  })

  it('refusals are logged a few per peer per minute, however many requests come', async () => {
    let logged = 0
    const count = (f: { peer: string }): void => { if (f.peer === stranger.peerId.toString()) logged++ }
    open.events.onEvent('holepunch.refused', count)
    try {
      const connection = await viaRelay(stranger, open)
      for (let i = 0; i < 12; i++) await refusedRequest(connection, [sinkAddr()])
    } finally {
      open.events.off('holepunch.refused', count)
    }
    // The first test's refusal was logged in this same minute.
    assert.equal(logged, PUNCH_REFUSALS_LOGGED_PER_MINUTE - 1)
    assert.equal(sink.connections(), 0)
  })

  it('a punch request over a direct connection is refused, even from a peer the node serves', async () => {
    const refused = event(open, 'holepunch.refused', f => f.peer === friend.peerId.toString())
    const connection = await friend.dial(multiaddr(tcpAddr(open)))
    assert.equal(connection.remoteAddr.toString().includes('/p2p-circuit'), false)
    await refusedRequest(connection, [sinkAddr()])
    assert.equal((await refused).reason, 'not-relayed')
    assert.equal(sink.connections(), 0)
    await connection.close()
  })

  it('a peer the node serves gets its punch answered: the node dials its candidate', async () => {
    const succeeded = event(open, 'holepunch.succeeded', f => f.peer === friend.peerId.toString())
    const direct = new Promise<Connection>(resolve => {
      friend.addEventListener('connection:open', evt => {
        if (evt.detail.remotePeer.equals(open.swarm.peerId) && !evt.detail.remoteAddr.toString().includes('/p2p-circuit')) resolve(evt.detail)
      })
    })
    const wire = await punchStream(await viaRelay(friend, open))
    await wire.write({ type: 'connect', addrs: [candidateOf(friend)], attempt: 1 })
    const reply = await wire.read()
    assert.equal(reply.type, 'connect')
    await wire.write({ type: 'sync' })
    const done = await succeeded
    assert.equal(done.role, 'responder')
    assert.equal(done.addr.split('/p2p/')[0], candidateOf(friend))
    assert.equal((await direct).direction, 'inbound', 'the node dialled the friend directly')
  })

  it('with the default filter, a served peer\'s loopback candidates are dropped before any dial', async () => {
    const failed = event(strict, 'holepunch.failed', f => f.peer === friend.peerId.toString())
    const wire = await punchStream(await viaRelay(friend, strict))
    await wire.write({ type: 'connect', addrs: [sinkAddr(), '/ip4/169.254.1.1/tcp/22', candidateOf(friend)], attempt: 1 })
    await wire.read()
    await wire.write({ type: 'sync' })
    assert.match((await failed).error, /none of the peer's 3 candidate addresses may be dialled/)
    assert.equal(sink.connections(), 0, 'the node dialled the loopback sink')
    assert.equal(friend.getConnections(strict.swarm.peerId).every(c => c.remoteAddr.toString().includes('/p2p-circuit')), true, 'the node dialled a loopback candidate')
  })

  it(`answers at most ${PUNCH_ROUNDS_PER_MINUTE} rounds per peer per minute, then resets without dialing`, async () => {
    const connection = await viaRelay(counter, strict)
    for (let round = 1; round <= PUNCH_ROUNDS_PER_MINUTE; round++) {
      const failed = event(strict, 'holepunch.failed', f => f.peer === counter.peerId.toString())
      const wire = await punchStream(connection)
      await wire.write({ type: 'connect', addrs: [], attempt: round })
      assert.equal((await wire.read()).type, 'connect', `round ${round} was answered`)
      await wire.write({ type: 'sync' })
      assert.equal((await failed).error, 'peer has no candidate addresses')
    }
    const refused = event(strict, 'holepunch.refused', f => f.peer === counter.peerId.toString())
    await refusedRequest(connection, [sinkAddr()])
    assert.equal((await refused).reason, 'too-many-rounds')
    assert.equal(sink.connections(), 0)
  })
})
