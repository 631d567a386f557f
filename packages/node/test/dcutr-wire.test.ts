import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import { multiaddr } from '@multiformats/multiaddr'
import { decodeHolePunch, encodeHolePunch } from '../src/holepunch/dcutr-wire.ts'
import { ProtocolError } from '../src/errors.ts'

/** js-libp2p's own generated codec (protons), from @libp2p/dcutr: the reference a standard peer runs. */
interface Reference {
  encode: (m: { type?: string, observedAddresses: Uint8Array[] }) => Uint8Array
  decode: (b: Uint8Array) => { type?: string, observedAddresses: Uint8Array[] }
}
const dcutrEntry = createRequire(import.meta.url).resolve('@libp2p/dcutr')
const { HolePunch } = await import(pathToFileURL(dcutrEntry.replace(/index\.js$/, 'pb/message.js')).href) as { HolePunch: Reference }

const peer = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'
const ma = (s: string): Uint8Array => multiaddr(s).bytes

describe('DCUtR messages', () => {
  it('encode CONNECT as the spec says: type 100 in field 1, each address as multiaddr bytes in field 2', () => {
    const bytes = encodeHolePunch({ type: 'connect', addrs: ['/ip4/11.0.0.11/tcp/4002'] })
    const addr = ma('/ip4/11.0.0.11/tcp/4002')
    // 08 64 = field 1 varint 100; 12 len bytes = field 2; then the extension (field 1001 = c8 3e, value 1).
    assert.deepEqual([...bytes], [0x08, 0x64, 0x12, addr.byteLength, ...addr, 0xc8, 0x3e, 0x01])
    assert.deepEqual([...encodeHolePunch({ type: 'sync' })], [0x08, 0xac, 0x02, 0xc8, 0x3e, 0x01])
  })

  it('a standard peer (js-libp2p\'s codec) reads ours and skips the extensions', () => {
    const theirs = HolePunch.decode(encodeHolePunch({ type: 'connect', addrs: ['/ip4/11.0.0.11/tcp/4002', '/ip6/2001::1/tcp/7'], attempt: 2 }))
    assert.equal(theirs.type, 'CONNECT')
    assert.deepEqual(theirs.observedAddresses.map(b => multiaddr(b).toString()), ['/ip4/11.0.0.11/tcp/4002', '/ip6/2001::1/tcp/7'])
    assert.equal(HolePunch.decode(encodeHolePunch({ type: 'sync' })).type, 'SYNC')
  })

  it('reads a standard peer\'s messages: no extension, so not Punchgate; /p2p/ID cut off; other transports dropped', () => {
    const connect = HolePunch.encode({
      type: 'CONNECT',
      observedAddresses: [
        ma(`/ip4/11.0.0.21/tcp/4001/p2p/${peer}`),
        ma('/ip4/11.0.0.21/udp/4001/quic-v1'),
        ma(`/ip4/11.0.0.2/tcp/4001/p2p/${peer}/p2p-circuit/p2p/${peer}`),
        ma('/dns4/example.com/tcp/443'),
        ma('/ip4/10.0.1.2/tcp/4001'),
        new Uint8Array([0xff, 0x01]) // not a multiaddr
      ]
    })
    assert.deepEqual(decodeHolePunch(connect), { type: 'connect', addrs: ['/ip4/11.0.0.21/tcp/4001', '/ip4/10.0.1.2/tcp/4001'] })
    assert.deepEqual(decodeHolePunch(HolePunch.encode({ type: 'SYNC', observedAddresses: [] })), { type: 'sync' })
  })

  it('round-trips Punchgate\'s own messages with the extensions', () => {
    const connect = { type: 'connect' as const, addrs: ['/ip4/11.0.0.11/tcp/4002', '/ip6/2001::1/tcp/7'], attempt: 3 }
    assert.deepEqual(decodeHolePunch(encodeHolePunch(connect)), { ...connect, punchgate: true })
    assert.deepEqual(decodeHolePunch(encodeHolePunch({ type: 'sync' })), { type: 'sync', punchgate: true })
  })

  it('carries UDP candidates (--udp-punch) in extension field 1003, which a standard peer skips; only plain /ip4|ip6/A/udp/P kept', () => {
    const connect = { type: 'connect' as const, addrs: ['/ip4/11.0.0.11/tcp/4002'], udp: ['/ip4/11.0.0.11/udp/5000', '/ip4/10.1.0.2/udp/5000'], attempt: 1 }
    assert.deepEqual(decodeHolePunch(encodeHolePunch(connect)), { ...connect, punchgate: true })
    const theirs = HolePunch.decode(encodeHolePunch(connect))
    assert.deepEqual(theirs.observedAddresses.map(b => multiaddr(b).toString()), ['/ip4/11.0.0.11/tcp/4002'])
    const odd = encodeHolePunch({ type: 'connect', addrs: [], udp: ['/ip4/11.0.0.11/udp/5000/quic-v1', '/ip4/11.0.0.11/tcp/1', '/ip4/11.0.0.12/udp/7', '/ip6/2001:db9:b::2/udp/7'] })
    assert.deepEqual(decodeHolePunch(odd).type === 'connect' && decodeHolePunch(odd), { type: 'connect', addrs: [], udp: ['/ip4/11.0.0.12/udp/7', '/ip6/2001:db9:b::2/udp/7'], punchgate: true })
  })

  it('keeps at most 8 candidates, without duplicates, and skips unknown fields of every wire type', () => {
    const addrs = Array.from({ length: 20 }, (_, i) => ma(`/ip4/11.0.0.${i % 10}/tcp/1`))
    const base = HolePunch.encode({ type: 'CONNECT', observedAddresses: addrs })
    // field 3 varint, field 4 fixed64, field 5 bytes, field 6 fixed32
    const unknown = [0x18, 0x96, 0x01, 0x21, 1, 2, 3, 4, 5, 6, 7, 8, 0x2a, 0x02, 0xaa, 0xbb, 0x35, 1, 2, 3, 4]
    const decoded = decodeHolePunch(Uint8Array.from([...unknown, ...base]))
    assert.equal(decoded.type, 'connect')
    assert.deepEqual(decoded.type === 'connect' && decoded.addrs, Array.from({ length: 8 }, (_, i) => `/ip4/11.0.0.${i}/tcp/1`))
  })

  it('ignores a zero attempt', () => {
    // field 1002 varint 0
    const bytes = Uint8Array.from([0x08, 0x64, 0xd0, 0x3e, 0x00])
    assert.deepEqual(decodeHolePunch(bytes), { type: 'connect', addrs: [] })
  })

  const bad: Array<[string, Uint8Array]> = [
    ['no type', Uint8Array.from([0x12, 0x00])],
    ['an unknown type', Uint8Array.from([0x08, 0x01])],
    ['the UNUSED type', Uint8Array.from([0x08, 0x00])],
    ['a truncated varint', Uint8Array.from([0x08, 0xac])],
    ['a field past the end', Uint8Array.from([0x08, 0x64, 0x12, 0x20, 0x04])],
    ['a group wire type', Uint8Array.from([0x08, 0x64, 0x1b])],
    ['a varint of 11 bytes', Uint8Array.from([0x08, ...new Array(10).fill(0xff), 0x01])],
    ['an oversized frame', new Uint8Array(5000)]
  ]
  for (const [what, frame] of bad) {
    it(`rejects ${what}`, () => assert.throws(() => decodeHolePunch(frame), ProtocolError))
  }
})
