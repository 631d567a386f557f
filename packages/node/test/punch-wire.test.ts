import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { decodePunch, encodePunch } from '../src/holepunch/wire.ts'
import { ProtocolError } from '../src/errors.ts'

const bytes = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value))

describe('punch messages', () => {
  it('round-trip connect and sync', () => {
    const connect = { type: 'connect' as const, addrs: ['/ip4/11.0.0.11/tcp/4002'], attempt: 2 }
    assert.deepEqual(decodePunch(encodePunch(connect)), connect)
    assert.deepEqual(decodePunch(encodePunch({ type: 'sync' })), { type: 'sync' })
  })

  it('keeps only plain ip/tcp candidates, at most 8', () => {
    const addrs = [
      '/ip4/11.0.0.11/tcp/4002', '/ip6/::1/tcp/1', 'garbage', 42,
      '/ip4/11.0.0.2/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA/p2p-circuit',
      '/ip4/11.0.0.11/udp/4002/quic-v1', '/dns4/example.com/tcp/1',
      ...Array.from({ length: 20 }, (_, i) => `/ip4/11.0.0.${i}/tcp/1`)
    ]
    const decoded = decodePunch(bytes({ type: 'connect', addrs }))
    assert.equal(decoded.type, 'connect')
    assert.ok(decoded.type === 'connect' && decoded.addrs.length === 8)
    assert.deepEqual(decoded.type === 'connect' && decoded.addrs.slice(0, 3), ['/ip4/11.0.0.11/tcp/4002', '/ip6/::1/tcp/1', '/ip4/11.0.0.0/tcp/1'])
  })

  it('keeps only plain /ip4|ip6/A/udp/P UDP candidates (--udp-punch), at most 8; none is no field', () => {
    const udp = [
      '/ip4/11.0.0.11/udp/4002', '/ip4/11.0.0.11/udp/4002/quic-v1', '/ip4/11.0.0.11/tcp/4002', '/ip4/11.0.0.11/udp/0',
      '/ip6/2001:db9:b::2/udp/4002', '/ip6/2001:db9:b::2/udp/4002/udx', '/dns4/example.com/udp/1',
      7, 'garbage', ...Array.from({ length: 20 }, (_, i) => `/ip4/11.0.0.${i}/udp/9`)
    ]
    const decoded = decodePunch(bytes({ type: 'connect', addrs: [], udp }))
    assert.ok(decoded.type === 'connect')
    assert.equal(decoded.udp?.length, 8)
    assert.deepEqual(decoded.udp?.slice(0, 3), ['/ip4/11.0.0.11/udp/4002', '/ip6/2001:db9:b::2/udp/4002', '/ip4/11.0.0.0/udp/9'])
    assert.deepEqual(decodePunch(bytes({ type: 'connect', addrs: [], udp: ['/ip4/1.2.3.4/tcp/1'] })), { type: 'connect', addrs: [] })
    const round = { type: 'connect' as const, addrs: ['/ip4/11.0.0.11/tcp/4002'], udp: ['/ip4/11.0.0.11/udp/5000'] }
    assert.deepEqual(decodePunch(encodePunch(round)), round)
  })

  it('ignores a bad attempt number', () => {
    assert.deepEqual(decodePunch(bytes({ type: 'connect', addrs: [], attempt: -1 })), { type: 'connect', addrs: [] })
  })

  const bad: Array<[string, Uint8Array]> = [
    ['not JSON', new TextEncoder().encode('{nope')],
    ['not UTF-8', new Uint8Array([0xff, 0xfe])],
    ['unknown type', bytes({ type: 'punch' })],
    ['connect without addrs', bytes({ type: 'connect' })],
    ['null', bytes(null)],
    ['oversized', new Uint8Array(5000).fill(0x20)]
  ]
  for (const [what, frame] of bad) {
    it(`rejects ${what}`, () => assert.throws(() => decodePunch(frame), ProtocolError))
  }
})
