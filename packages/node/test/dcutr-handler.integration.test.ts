/**
 * `/libp2p/dcutr` on a Punchgate node keeps the puncher's rules (docs/nat-traversal.md, "What a
 * peer can make us dial"): bare libp2p peers speak the standard HolePunch messages (js-libp2p's
 * own codec, so without Punchgate's extension) to a node behind a relay. A stranger's request
 * is reset unread, a request over a direct connection too; a peer the node serves is answered
 * and dialled; both protocols draw on one budget per peer. And the node starts DCUtR itself
 * with a standard peer (a real @libp2p/dcutr node) that reaches it over a relay, only when it
 * has a reason to meet it.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { dcutr } from '@libp2p/dcutr'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection, Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { DCUTR_PROTOCOL, PUNCH_PROTOCOL, PUNCH_ROUNDS_PER_MINUTE, type PunchgateNode } from '../src/index.ts'
import { encodePunch } from '../src/holepunch/wire.ts'
import { encodeHolePunch } from '../src/holepunch/dcutr-wire.ts'
import { candidateOf, echoServer, event, tcpAddr, testNode, type EchoServer } from './fixtures.ts'

interface HolePunchMessage { type?: string, observedAddresses: Uint8Array[] }
const dcutrEntry = createRequire(import.meta.url).resolve('@libp2p/dcutr')
const { HolePunch } = await import(pathToFileURL(dcutrEntry.replace(/index\.js$/, 'pb/message.js')).href) as {
  HolePunch: { encode: (m: HolePunchMessage) => Uint8Array, decode: (b: Uint8Array) => HolePunchMessage }
}

/** A bare peer that can dial through a relay and listens on loopback; with `withDcutr`, js-libp2p's DCUtR too. */
async function barePeer (withDcutr = false): Promise<Libp2p> {
  return createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), ...(withDcutr ? { dcutr: dcutr() } : {}) }
  })
}

/** A DCUtR stream on `connection`, written as a standard peer writes it. */
async function dcutrStream (connection: Connection): Promise<{ stream: Stream, connect: (addrs: string[]) => Promise<void>, sync: () => Promise<void>, read: () => Promise<HolePunchMessage> }> {
  const stream = await connection.newStream(DCUTR_PROTOCOL, { runOnLimitedConnection: true })
  const lp = lpStream(stream)
  const signal = AbortSignal.timeout(10_000)
  return {
    stream,
    connect: async addrs => { await lp.write(HolePunch.encode({ type: 'CONNECT', observedAddresses: addrs.map(a => multiaddr(a).bytes) }), { signal }) },
    sync: async () => { await lp.write(HolePunch.encode({ type: 'SYNC', observedAddresses: [] }), { signal }) },
    read: async () => HolePunch.decode((await lp.read({ signal })).subarray())
  }
}

/** Sends CONNECT and SYNC without waiting; resolves once the node has reset the stream. */
async function refusedRequest (connection: Connection, addrs: string[]): Promise<void> {
  let wire: Awaited<ReturnType<typeof dcutrStream>>
  try {
    wire = await dcutrStream(connection)
    await wire.connect(addrs)
    await wire.sync()
  } catch {
    return // reset while opening or writing: refused
  }
  await assert.rejects(wire.read(), 'the node answered a request it should have refused')
}

describe('DCUtR: what a standard peer can make a node do', () => {
  let sink: EchoServer
  let relay: PunchgateNode
  let open: PunchgateNode
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
    open = await testNode({
      bootstrap: [relayAddr], expose: [`echo=127.0.0.1:${sink.port}`], allow: [friend.peerId.toString(), counter.peerId.toString()]
    }, { loopbackCandidates: true })
    await event(open, 'relay.reserved')
  })

  after(async () => {
    await Promise.all([friend, counter, stranger].map(async p => p?.stop()))
    await Promise.all([open, relay].map(async n => n?.stop({ drainMs: 0 })))
    await sink?.close()
  })

  it('the node serves /libp2p/dcutr next to its own protocol', () => {
    const protocols = open.swarm.getProtocols()
    assert.ok(protocols.includes(DCUTR_PROTOCOL) && protocols.includes(PUNCH_PROTOCOL), protocols.join(' '))
  })

  it('a stranger\'s DCUtR CONNECT over a relay is reset unread; the loopback sink sees nothing', async () => {
    const refused = event(open, 'holepunch.refused', f => f.peer === stranger.peerId.toString())
    await refusedRequest(await viaRelay(stranger, open), [sinkAddr()])
    assert.equal((await refused).reason, 'not-known')
    assert.equal(sink.connections(), 0)
  })

  it('a DCUtR request over a direct connection is refused, even from a peer the node serves', async () => {
    const refused = event(open, 'holepunch.refused', f => f.peer === friend.peerId.toString())
    const connection = await friend.dial(multiaddr(tcpAddr(open)))
    await refusedRequest(connection, [sinkAddr()])
    assert.equal((await refused).reason, 'not-relayed')
    assert.equal(sink.connections(), 0)
    await connection.close()
  })

  it('a served standard peer gets CONNECT back (js-libp2p\'s codec reads it), and the node dials it as a plain client', async () => {
    const succeeded = event(open, 'holepunch.succeeded', f => f.peer === friend.peerId.toString())
    const direct = new Promise<Connection>(resolve => {
      friend.addEventListener('connection:open', evt => {
        if (evt.detail.remotePeer.equals(open.swarm.peerId) && !evt.detail.remoteAddr.toString().includes('/p2p-circuit')) resolve(evt.detail)
      })
    })
    const wire = await dcutrStream(await viaRelay(friend, open))
    await wire.connect([`${candidateOf(friend)}/p2p/${friend.peerId}`])
    const reply = await wire.read()
    assert.equal(reply.type, 'CONNECT')
    // (On 127.0.0.1 the node has no candidates of its own to send: loopback never goes out.)
    await wire.sync()
    const done = await succeeded
    assert.equal(done.role, 'responder')
    assert.equal(done.addr.split('/p2p/')[0], candidateOf(friend))
    const connection = await direct
    assert.equal(connection.direction, 'inbound', 'the node dialled the friend')
    // The node was the TLS client, as the DCUtR spec has the side that receives CONNECT be:
    // the friend's listener upgraded it as an ordinary inbound connection and it works.
    assert.equal(connection.status, 'open')
  })

  it(`both protocols draw on one budget: ${PUNCH_ROUNDS_PER_MINUTE} rounds per peer per minute`, async () => {
    const connection = await viaRelay(counter, open)
    for (let round = 1; round <= PUNCH_ROUNDS_PER_MINUTE; round++) {
      const failed = event(open, 'holepunch.failed', f => f.peer === counter.peerId.toString())
      if (round % 2 === 0) {
        const stream = await connection.newStream(PUNCH_PROTOCOL, { runOnLimitedConnection: true })
        const lp = lpStream(stream)
        await lp.write(encodePunch({ type: 'connect', addrs: [], attempt: round }))
        await lp.read()
        await lp.write(encodePunch({ type: 'sync' }))
      } else {
        // DCUtR as a Punchgate peer writes it (with the extension): no candidates fails at once.
        const stream = await connection.newStream(DCUTR_PROTOCOL, { runOnLimitedConnection: true })
        const lp = lpStream(stream)
        await lp.write(encodeHolePunch({ type: 'connect', addrs: [], attempt: round }))
        assert.equal(HolePunch.decode((await lp.read()).subarray()).type, 'CONNECT', `round ${round} was answered`)
        await lp.write(encodeHolePunch({ type: 'sync' }))
      }
      assert.equal((await failed).error, 'peer has no candidate addresses')
    }
    const refused = event(open, 'holepunch.refused', f => f.peer === counter.peerId.toString())
    await refusedRequest(connection, [sinkAddr()])
    assert.equal((await refused).reason, 'too-many-rounds')
    assert.equal(sink.connections(), 0)
  })
})

/**
 * A standard peer answering DCUtR by hand, as js-libp2p's handler does (no extension): it
 * answers CONNECT with `offer` and, on SYNC, runs `onSync` (js-libp2p would dial).
 */
async function manualDcutrPeer (offer: (peer: Libp2p) => string[], onSync: (peer: Libp2p) => Promise<void>): Promise<Libp2p> {
  const peer = await barePeer()
  await peer.handle(DCUTR_PROTOCOL, async (stream) => {
    const lp = lpStream(stream)
    HolePunch.decode((await lp.read()).subarray())
    await lp.write(HolePunch.encode({ type: 'CONNECT', observedAddresses: offer(peer).map(a => multiaddr(a).bytes) }))
    const sync = HolePunch.decode((await lp.read()).subarray())
    if (sync.type === 'SYNC') await onSync(peer)
  }, { runOnLimitedConnection: true })
  return peer
}

describe('DCUtR: the node starts the round with a standard peer that reaches it over a relay', () => {
  let relay: PunchgateNode
  let node: PunchgateNode
  let allowed: Libp2p
  let stranger: Libp2p
  let listening: Libp2p
  let silent: Libp2p
  let relayAddr: string

  before(async () => {
    ;[allowed, stranger] = await Promise.all([barePeer(true), barePeer(true)])
    // Offers its listening address and dials nothing: only the node's plain client dial can connect
    // (its SYN reaching the peer's listener, as with a standard peer on a public host).
    listening = await manualDcutrPeer(peer => [`${candidateOf(peer)}/p2p/${peer.peerId}`], async () => {})
    // Offers nothing usable and dials the node itself on SYNC, as a client (js-libp2p behind a NAT).
    silent = await manualDcutrPeer(() => ['/ip4/10.255.0.1/tcp/4001'], async peer => { await peer.dial(multiaddr(tcpAddr(node)), { force: true } as object) })
    relay = await testNode()
    relayAddr = tcpAddr(relay)
    const allow = [allowed, listening, silent].map(p => p.peerId.toString())
    node = await testNode({ bootstrap: [relayAddr], expose: ['echo=127.0.0.1:9'], allow }, { loopbackCandidates: true })
    await event(node, 'relay.reserved')
  })

  after(async () => {
    await Promise.all([allowed, stranger, listening, silent].map(async p => p?.stop()))
    await Promise.all([node, relay].map(async n => n?.stop({ drainMs: 0 })))
  })

  // First in this suite: after the other peers' rounds its relayed dial was sometimes closed
  // during the upgrade (order-dependent, cause not found; alone it always passes).
  it('a stranger (not on the allow-list): identify completes and no round starts', async () => {
    let rounds = 0
    const count = (f: { peer: string }): void => { if (f.peer === stranger.peerId.toString()) rounds++ }
    node.events.onEvent('holepunch.started', count)
    try {
      const identified = new Promise<void>(resolve => {
        node.swarm.addEventListener('peer:identify', evt => { if (evt.detail.peerId.equals(stranger.peerId)) resolve() })
      })
      await stranger.dial(multiaddr(`${relayAddr}/p2p-circuit/p2p/${node.peerId}`))
      // The node decides on identify, synchronously: by the time this listener runs, a round would have started.
      await identified
      assert.equal(rounds, 0)
    } finally {
      node.events.off('holepunch.started', count)
    }
  })

  it('a peer the node serves: the node sends it CONNECT on /libp2p/dcutr as the initiator', async () => {
    const started = event(node, 'holepunch.started', f => f.peer === allowed.peerId.toString())
    await allowed.dial(multiaddr(`${relayAddr}/p2p-circuit/p2p/${node.peerId}`))
    const round = await started
    assert.equal(round.role, 'initiator')
    assert.equal(round.attempt, 1)
    // js-libp2p's handler reads our CONNECT and drops our loopback candidates as private, so the
    // round ends there; scripts/dcutr-lab.sh shows whole rounds across NATs.
    const failed = await event(node, 'holepunch.failed', f => f.peer === allowed.peerId.toString())
    assert.equal(failed.role, 'initiator')
  })

  it('a standard peer whose listener takes our SYN: the node\'s plain client dial connects (the spec\'s unilateral upgrade)', async () => {
    const succeeded = event(node, 'holepunch.succeeded', f => f.peer === listening.peerId.toString())
    const direct = new Promise<Connection>(resolve => {
      listening.addEventListener('connection:open', evt => {
        if (evt.detail.remotePeer.equals(node.swarm.peerId) && !evt.detail.remoteAddr.toString().includes('/p2p-circuit')) resolve(evt.detail)
      })
    })
    await listening.dial(multiaddr(`${relayAddr}/p2p-circuit/p2p/${node.peerId}`))
    const round = await succeeded
    assert.equal(round.role, 'initiator')
    assert.equal(round.addr.split('/p2p/')[0], candidateOf(listening))
    assert.equal((await direct).direction, 'inbound')
    // Upgraded (TLS and muxer roles matched): a clash never opens.
  })

  it('a standard peer with no usable candidate: the round waits for its dial at our listener', async () => {
    const succeeded = event(node, 'holepunch.succeeded', f => f.peer === silent.peerId.toString())
    await silent.dial(multiaddr(`${relayAddr}/p2p-circuit/p2p/${node.peerId}`))
    const round = await succeeded
    assert.equal(round.role, 'initiator')
    const direct = node.swarm.getConnections(silent.peerId).find(c => !c.remoteAddr.toString().includes('/p2p-circuit'))
    assert.equal(direct?.direction, 'inbound', 'the direct connection is the peer\'s dial')
  })


})

describe('a Punchgate node from before DCUtR (serves only /punchgate/punch/1.0.0)', () => {
  let relay: PunchgateNode
  let node: PunchgateNode
  let old: Libp2p
  let relayAddr: string
  const requests: Array<{ protocol: string, connect: unknown }> = []

  before(async () => {
    old = await barePeer()
    await old.handle(PUNCH_PROTOCOL, async (stream) => {
      const lp = lpStream(stream)
      requests.push({ protocol: stream.protocol, connect: JSON.parse(new TextDecoder().decode((await lp.read()).subarray())) })
      await lp.write(encodePunch({ type: 'connect', addrs: [] }))
      await lp.read()
    }, { runOnLimitedConnection: true })
    relay = await testNode()
    relayAddr = tcpAddr(relay)
    node = await testNode({ bootstrap: [relayAddr], expose: ['echo=127.0.0.1:9'], allow: [old.peerId.toString()] }, { loopbackCandidates: true })
    await event(node, 'relay.reserved')
  })

  after(async () => {
    await old?.stop()
    await Promise.all([node, relay].map(async n => n?.stop({ drainMs: 0 })))
  })

  it('a round falls back to the JSON protocol in the same negotiation, with its attempt number', async () => {
    const relayed = new Promise<void>(resolve => {
      node.swarm.addEventListener('connection:open', evt => { if (evt.detail.remotePeer.equals(old.peerId)) resolve() })
    })
    await old.dial(multiaddr(`${relayAddr}/p2p-circuit/p2p/${node.peerId}`))
    await relayed
    // The node's puncher, as a tunnel's round would call it (consumer.punch).
    const puncher = (node as unknown as { puncher: { punch: (peer: string, attempt: number) => Promise<unknown> } }).puncher
    const failed = event(node, 'holepunch.failed', f => f.peer === old.peerId.toString())
    await assert.rejects(puncher.punch(old.peerId.toString(), 2))
    assert.equal((await failed).error, 'peer has no candidate addresses')
    assert.equal(requests.length, 1)
    assert.equal(requests[0]?.protocol, PUNCH_PROTOCOL)
    // UDP punching is on by default: its candidates ride beside, in a field the old node ignores.
    const { udp, ...connect } = requests[0]?.connect as { udp?: unknown }
    assert.deepEqual(connect, { type: 'connect', addrs: [], attempt: 2 })
    assert.ok(Array.isArray(udp))
  })
})
