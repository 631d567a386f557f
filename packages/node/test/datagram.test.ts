import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { streamPair } from '@libp2p/utils'
import { Uint8ArrayList } from 'uint8arraylist'
import { until } from './fixtures.ts'
import { DatagramChannel, DatagramDecoder, MAX_DATAGRAM_BYTES, datagramHeader } from '../src/protocol/datagram.ts'

const framed = (payload: Uint8Array): Uint8Array => Uint8Array.from([...datagramHeader(payload.byteLength), ...payload])

describe('datagram framing', () => {
  it('decodes datagrams joined in one chunk and split across many, empty ones included', () => {
    const datagrams = [Uint8Array.of(1, 2, 3), new Uint8Array(0), new Uint8Array(300).fill(7)]
    const bytes = Uint8Array.from(datagrams.flatMap(d => [...framed(d)]))
    assert.deepEqual(new DatagramDecoder().push(bytes), datagrams)

    const decoder = new DatagramDecoder()
    const out: Uint8Array[] = []
    for (const byte of bytes) out.push(...decoder.push(Uint8Array.of(byte)))
    assert.deepEqual(out, datagrams)
  })

  it('accepts a Uint8ArrayList chunk', () => {
    const list = new Uint8ArrayList(datagramHeader(2), Uint8Array.of(9, 9))
    assert.deepEqual(new DatagramDecoder().push(list), [Uint8Array.of(9, 9)])
  })

  it('refuses a length above 65,507 from the header alone', () => {
    assert.throws(() => new DatagramDecoder().push(Uint8Array.of(0xff, 0xff)), { name: 'ProtocolError' })
    assert.throws(() => datagramHeader(MAX_DATAGRAM_BYTES + 1), { name: 'ProtocolError' })
  })

  it('carries datagrams both ways over a stream, and a FIN from one side ends the session on both', async () => {
    const [a, b] = await streamPair()
    const got: { a: Uint8Array[], b: Uint8Array[] } = { a: [], b: [] }
    const closed = { a: false, b: false }
    const ca = new DatagramChannel(a, { onDatagram: d => got.a.push(d), onClose: () => { closed.a = true } })
    const bClosed = new Promise<void>(resolve => {
      const cb = new DatagramChannel(b, { onDatagram: d => { got.b.push(d); cb.send(d.slice().reverse()) }, onClose: () => { closed.b = true; resolve() } })
    })
    const max = new Uint8Array(MAX_DATAGRAM_BYTES).fill(1)
    ca.send(Uint8Array.of(1, 2, 3))
    ca.send(max)
    await until(() => got.a.length === 2)
    assert.deepEqual(got.b.map(d => d.byteLength), [3, MAX_DATAGRAM_BYTES])
    assert.deepEqual(got.a[0], Uint8Array.of(3, 2, 1))
    assert.equal(ca.counts.datagramsOut, 2)
    assert.equal(ca.counts.datagramsIn, 2)
    ca.close()
    await bClosed
    assert.ok(closed.b)
    assert.equal(ca.send(Uint8Array.of(1)), false, 'a closed channel drops')
    assert.equal(ca.counts.dropped, 1)
  })

  it('queues a burst sent in one go instead of dropping all but the first datagram', { timeout: 10_000 }, async () => {
    const [a, b] = await streamPair()
    const got: Uint8Array[] = []
    const all = new Promise<void>(resolve => {
      new DatagramChannel(b, { onDatagram: d => { got.push(d); if (got.length === 64) resolve() }, onClose: () => {} })
    })
    const ca = new DatagramChannel(a, { onDatagram: () => {}, onClose: () => {} })
    const burst = Array.from({ length: 64 }, (_, i) => new Uint8Array(1200).fill(i))
    for (const datagram of burst) ca.send(datagram)
    await all
    assert.equal(ca.counts.dropped, 0)
    assert.deepEqual(got, burst)
    a.abort(new Error('test over'))
  })

  it('resets the stream on a broken length', async () => {
    const [a, b] = await streamPair()
    const error = new Promise<Error | undefined>(resolve => {
      new DatagramChannel(b, { onDatagram: () => {}, onClose: err => resolve(err) })
    })
    a.send(Uint8Array.of(0xff, 0xff, 0))
    assert.equal((await error)?.name, 'ProtocolError')
  })
})
