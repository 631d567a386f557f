/**
 * The role clash of a punch round (issue 19 item 7, and the full-cone pair's lost first round):
 * A dials as the responder, as the puncher asks, and its SYN reaches B's listener before B's
 * own dial leaves. B's listener must then upgrade as the initiator, or both ends wait for the
 * other's TLS ClientHello until the round times out. On loopback, with the real transport.
 */
import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createLibp2p, type Libp2p } from 'libp2p'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { TransportManager } from '@libp2p/interface-internal'
import type { Connection } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { punchRoles, reuseportTcp } from '../src/transport/reuseport-tcp.ts'
import { socketTls } from '../src/socket-tls.ts'

type Node = Libp2p<{ internals: { transportManager: TransportManager } }>

const nodes: Node[] = []
after(async () => { await Promise.all(nodes.map(async n => n.stop())) })

async function node (): Promise<Node> {
  const n = await createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [reuseportTcp()],
    connectionEncrypters: [socketTls()],
    streamMuxers: [yamux()],
    services: {
      internals: (components: { transportManager: TransportManager }) => ({ get transportManager () { return components.transportManager } })
    }
  }) as Node
  nodes.push(n)
  return n
}

/** A's dial of B as the punch asks it: from A, as the TLS/multistream responder. */
async function dialAsResponder (a: Node, b: Node): Promise<Connection> {
  const target = multiaddr(`${b.getMultiaddrs()[0]!.toString()}`)
  return a.services.internals.transportManager.dial(target, { signal: AbortSignal.timeout(3_000), initiator: false } as Parameters<TransportManager['dial']>[1])
}

function rolesOf (n: Node): NonNullable<ReturnType<typeof punchRoles>> {
  const roles = punchRoles(n.services.internals.transportManager.getTransports())
  assert.ok(roles, 'the reuseport transport is running')
  return roles
}

describe('punch roles on a connection a listener accepted', () => {
  it('B expecting A upgrades A\'s dial as the initiator: the connection opens on both ends', async () => {
    const [a, b] = [await node(), await node()]
    const round = new AbortController()
    rolesOf(b).expectInbound(a.peerId, ['127.0.0.1'], round.signal)
    const opened = new Promise<Connection>(resolve => {
      b.addEventListener('connection:open', evt => { if (evt.detail.remotePeer.equals(a.peerId)) resolve(evt.detail) })
    })
    const atA = await dialAsResponder(a, b)
    const atB = await opened
    round.abort()
    assert.equal(atA.remotePeer.toString(), b.peerId.toString())
    assert.equal(atA.status, 'open')
    assert.equal(atB.status, 'open')
    assert.equal(atB.direction, 'outbound', 'B took the initiator side')
    await atA.close()
  })

  it('without an expectation both ends would be responders: the dial fails', async () => {
    const [a, b] = [await node(), await node()]
    await assert.rejects(dialAsResponder(a, b))
  })

  it('an expectation for another peer does not hand the connection to A: TLS checks who it is', async () => {
    const [a, b, c] = [await node(), await node(), await node()]
    const round = new AbortController()
    rolesOf(b).expectInbound(c.peerId, ['127.0.0.1'], round.signal)
    await assert.rejects(dialAsResponder(a, b))
    round.abort()
    assert.equal(b.getConnections(a.peerId).length, 0)
  })

  it('once the round is over, the listener is the responder again: an ordinary dial opens', async () => {
    const [a, b] = [await node(), await node()]
    const round = new AbortController()
    rolesOf(b).expectInbound(a.peerId, ['127.0.0.1'], round.signal)
    round.abort()
    const connection = await a.dial(b.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(3_000) })
    assert.equal(connection.status, 'open')
    assert.equal(connection.direction, 'outbound')
    await connection.close()
  })
})
