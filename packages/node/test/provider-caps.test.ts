/**
 * The public node's provider record store on its own: caps per publisher and in total,
 * refreshes and the node's own records never refused, expiry frees a slot; refusals logged
 * once per interval with a count.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Key } from 'interface-datastore'
import { CappedProviderStore, refusalReporter, type ProviderRefusal } from '../src/provider-caps.ts'

const SELF = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'
const A = '12D3KooWSTrqRiX7VmAocYibHVWuNkmmCdkYj7XidphoYvLui6xD'
const B = '12D3KooWRAqJmGj5DczXfw9FhfaTaLv5YbMyt1bt6LtFzYSuz7g6'
const TIME = Uint8Array.of(1)

/** The key kad-dht writes for `peer` providing the content `n`. */
const record = (n: number, peer: string): Key => new Key(`/dht/provider/CIQ${n}/${peer}`)

describe('provider record caps', () => {
  it('holds DHT value records (PUT_VALUE, any peer, a fresh key each) to the total too', () => {
    const store = new CappedProviderStore({ self: SELF, perPeer: 10, total: 2 })
    const value = (n: number): Key => new Key(`/dht/record/AFZBEIB${n}`)
    store.put(value(1), TIME)
    store.put(value(2), TIME)
    assert.throws(() => store.put(value(3), TIME), { name: 'ProviderCapError' })
    store.put(value(2), TIME)
    store.delete(value(1))
    store.put(value(3), TIME)
    assert.equal(store.has(value(3)), true)
    store.put(new Key('/peers/x'), TIME)
  })

  it('refuses a publisher\'s record past its cap, still takes a refresh and other publishers\' records', () => {
    const refused: ProviderRefusal[] = []
    const store = new CappedProviderStore({ self: SELF, perPeer: 2, total: 100, onRefused: r => refused.push(r) })
    store.put(record(1, A), TIME)
    store.put(record(2, A), TIME)
    assert.throws(() => store.put(record(3, A), TIME), { name: 'ProviderCapError' })
    store.put(record(2, A), TIME)
    store.put(record(1, B), TIME)
    assert.equal(store.records, 3)
    assert.equal(store.has(record(3, A)), false)
    assert.deepEqual(refused, [{ peer: A, reason: 'peer-cap' }])
  })

  it('refuses any publisher past the total, but never the node\'s own records; a deleted (expired) record frees its slot', () => {
    const store = new CappedProviderStore({ self: SELF, perPeer: 10, total: 2 })
    store.put(record(1, A), TIME)
    store.put(record(1, B), TIME)
    assert.throws(() => store.put(record(2, B), TIME), /total-cap/)
    store.put(record(1, SELF), TIME)
    assert.equal(store.records, 3)
    store.delete(record(1, A))
    store.delete(record(1, A))
    assert.equal(store.records, 2, 'a second delete of the same key counts once')
    assert.throws(() => store.put(record(2, B), TIME), /total-cap/, 'own records count towards the total')
    store.delete(record(1, SELF))
    store.put(record(2, B), TIME)
    assert.equal(store.records, 2)
  })

  it('keeps other keys (peer store, DHT values) out of the count', () => {
    const store = new CappedProviderStore({ self: SELF, perPeer: 1, total: 1 })
    store.put(new Key(`/peers/${A}`), TIME)
    store.put(new Key('/dht/record/abc'), TIME)
    store.put(record(1, A), TIME)
    assert.equal(store.records, 1)
  })

  it('reports the first refusal at once, then at most one per interval with the count since the last', () => {
    let now = 0
    const reported: Array<ProviderRefusal & { refused: number }> = []
    const report = refusalReporter(r => reported.push(r), 60_000, () => now)
    for (let i = 0; i < 1000; i++) report({ peer: A, reason: 'peer-cap' })
    assert.deepEqual(reported, [{ peer: A, reason: 'peer-cap', refused: 1 }])
    now = 60_000
    report({ peer: B, reason: 'total-cap' })
    assert.deepEqual(reported.at(-1), { peer: B, reason: 'total-cap', refused: 1000 })
    assert.equal(reported.length, 2)
  })
})
