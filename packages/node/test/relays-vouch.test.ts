/**
 * `/punchgate/relays/1.0.0`: who may ask (directly connected peers, once per interval), what
 * the answer may hold (verified public peers, capped, the asker left out), and what the asker
 * keeps of it (only well-formed entries with addresses it may dial).
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { Libp2p } from 'libp2p'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { lpStream, streamPair } from '@libp2p/utils'
import type { Connection } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { plainNode } from './fixtures.ts'
import { MAX_FRAME_BYTES } from '../src/constants.ts'
import { askRelays, decodeAnswer, encodeAnswer, relaysHandler, serveRelays, type VouchedRelay } from '../src/relays/vouch.ts'
import { localScope } from '../src/holepunch/candidates.ts'

async function newId (): Promise<string> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
}


/** Runs `handler` on one stream of a pair and says whether the other end got an answer. */
async function outcome (handler: ReturnType<typeof relaysHandler>, connection: Pick<Connection, 'remotePeer' | 'direct' | 'remoteAddr'>): Promise<'answered' | 'refused'> {
  const [local, remote] = await streamPair()
  const read = lpStream(local).read({ signal: AbortSignal.timeout(2_000) })
  await handler(remote, connection)
  try {
    await read
    return 'answered'
  } catch {
    return 'refused'
  }
}

const frame = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value))
const lab = localScope()
const loopback = localScope({ allowLoopback: true })

describe('relays protocol', () => {
  let server: Libp2p
  let asker: Libp2p
  let C: string
  let D: string
  let verified: VouchedRelay[] = []

  before(async () => {
    [server, asker] = await Promise.all([plainNode(), plainNode()])
    ;[C, D] = await Promise.all([newId(), newId()])
    await serveRelays(server, () => verified)
    await asker.dial(server.getMultiaddrs()[0] ?? multiaddr())
  })
  after(async () => { await Promise.all([server.stop(), asker.stop()]) })

  it('a directly connected peer gets the verified public peers, itself left out; a second ask within the interval is refused', async () => {
    verified = [
      { peer: asker.peerId.toString(), addrs: ['/ip4/11.0.0.9/tcp/4001'] },
      { peer: C, addrs: ['/ip4/11.0.0.3/tcp/4001', '/ip4/11.0.0.3/udp/4001/quic-v1'] },
      { peer: D, addrs: ['/ip4/127.0.0.1/tcp/4001'] }
    ]
    // D's only address is loopback: not one this node dials on a peer's word.
    assert.deepEqual(await askRelays(asker, server.peerId, lab), [
      { peer: C, addrs: ['/ip4/11.0.0.3/tcp/4001', '/ip4/11.0.0.3/udp/4001/quic-v1'] }
    ])
    await assert.rejects(askRelays(asker, server.peerId, lab))
  })

  it('refuses an asker on a relayed connection, unanswered', async () => {
    const handler = relaysHandler(() => [{ peer: C, addrs: ['/ip4/11.0.0.3/tcp/4001'] }])
    const relayed = { remotePeer: asker.peerId, direct: false, remoteAddr: multiaddr(`/ip4/11.0.0.2/tcp/4001/p2p/${server.peerId.toString()}/p2p-circuit`) }
    assert.equal(await outcome(handler, relayed), 'refused')
    assert.equal(await outcome(handler, { ...relayed, direct: true, remoteAddr: multiaddr('/ip4/11.0.0.9/tcp/4001') }), 'answered')
  })

  it('answers one peer once per interval and everyone 64 times per interval', async () => {
    let now = 0
    const handler = relaysHandler(() => [], { now: () => now })
    const ask = async (peer: string): Promise<string> =>
      outcome(handler, { remotePeer: { toString: () => peer } as never, direct: true, remoteAddr: multiaddr('/ip4/11.0.0.5/tcp/1') })
    assert.equal(await ask('a'), 'answered')
    assert.equal(await ask('a'), 'refused')
    for (let i = 0; i < 63; i++) assert.equal(await ask(`p${i}`), 'answered')
    assert.equal(await ask('one-too-many'), 'refused')
    now += 10_000
    assert.equal(await ask('a'), 'answered')
  })
})

describe('relays answer', () => {
  it('is capped at 8 entries of 4 addresses and always fits one frame', async () => {
    const ids = await Promise.all(Array.from({ length: 12 }, newId))
    const many = ids.map(peer => ({ peer, addrs: Array.from({ length: 10 }, (_, i) => `/ip6/2001:4860:4860::${i}/udp/${4000 + i}/quic-v1`) }))
    const bytes = encodeAnswer(many)
    assert.ok(bytes.byteLength <= MAX_FRAME_BYTES)
    const decoded = decodeAnswer(bytes, lab)
    assert.ok(decoded.length >= 1 && decoded.length <= 8)
    assert.ok(decoded.every(r => r.addrs.length <= 4))
    assert.equal(decodeAnswer(encodeAnswer(many.slice(0, 3).map(r => ({ ...r, addrs: r.addrs.slice(0, 2) }))), lab).length, 3)
  })

  it('keeps only entries with a valid peer id and addresses this node may dial, each peer once', async () => {
    const [A, B, self] = await Promise.all([newId(), newId(), newId()])
    const answer = frame({
      relays: [
        { peer: 'not-a-peer', addrs: ['/ip4/11.0.0.3/tcp/4001'] },
        { peer: self, addrs: ['/ip4/11.0.0.4/tcp/4001'] },
        { peer: A, addrs: [
          `/ip4/11.0.0.3/tcp/4001/p2p/${A}`, // its own id: kept, without it
          `/ip4/11.0.0.3/tcp/4002/p2p/${B}`, // someone else's id
          `/ip4/11.0.0.2/tcp/4001/p2p/${B}/p2p-circuit`, // a circuit: a relay must be reachable directly
          '/dns4/example.com/tcp/4001', // a name, not an address
          '/ip4/0.0.0.0/tcp/4001',
          '/ip4/11.0.0.3', // no transport
          42
        ] },
        { peer: A, addrs: ['/ip4/11.0.0.7/tcp/4001'] },
        { peer: B, addrs: 'not-a-list' }
      ]
    })
    assert.deepEqual(decodeAnswer(answer, lab, [self]), [{ peer: A, addrs: ['/ip4/11.0.0.3/tcp/4001'] }])
  })

  it('loopback and our LAN are for tests only and our own subnets only', async () => {
    const A = await newId()
    const answer = frame({ relays: [{ peer: A, addrs: ['/ip4/127.0.0.1/tcp/4001', '/ip4/192.168.254.7/tcp/4001'] }] })
    assert.deepEqual(decodeAnswer(answer, lab), [])
    assert.deepEqual(decodeAnswer(answer, loopback), [{ peer: A, addrs: ['/ip4/127.0.0.1/tcp/4001'] }])
  })

  it('rejects an answer that is not a relays list', () => {
    assert.throws(() => decodeAnswer(new Uint8Array([0xff, 0xfe]), lab), /UTF-8 JSON/)
    assert.throws(() => decodeAnswer(frame({ relays: 'x' }), lab), /no "relays" list/)
    assert.throws(() => decodeAnswer(frame(null), lab), /no "relays" list/)
  })
})
