import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { OpenGate } from '../src/protocol/open-gate.ts'

describe('a tunnel\'s gate for stream openings', () => {
  it('lets `limit` in at once and the rest in the order they came, one per place given back', async () => {
    const gate = new OpenGate(2)
    const signal = new AbortController().signal
    const first = await gate.enter(signal)
    const second = await gate.enter(signal)
    const order: number[] = []
    const later = [3, 4, 5].map(async n => gate.enter(signal).then(leave => { order.push(n); return leave }))
    await Promise.resolve()
    assert.deepEqual(gate.size, { active: 2, waiting: 3 })
    assert.deepEqual(order, [], 'nobody past the limit got in')

    first()
    first() // twice is harmless: it gives back one place, not two
    const third = await later[0]!
    assert.deepEqual(order, [3])
    assert.deepEqual(gate.size, { active: 2, waiting: 2 })

    second()
    third()
    await Promise.all(later)
    assert.deepEqual(order, [3, 4, 5])
    assert.deepEqual(gate.size, { active: 2, waiting: 0 })
  })

  it('drops a waiter whose signal aborts, with its reason, and gives its turn to the next', async () => {
    const gate = new OpenGate(1)
    const leave = await gate.enter(new AbortController().signal)
    const gaveUp = new AbortController()
    const abandoned = gate.enter(gaveUp.signal)
    const next = gate.enter(new AbortController().signal)
    gaveUp.abort(new Error('client left'))
    await assert.rejects(abandoned, /client left/)
    assert.deepEqual(gate.size, { active: 1, waiting: 1 })
    leave()
    const nextLeave = await next
    assert.deepEqual(gate.size, { active: 1, waiting: 0 }, 'the abandoned waiter took no place')
    nextLeave()
    assert.deepEqual(gate.size, { active: 0, waiting: 0 })
  })

  it('refuses at once when the signal has already aborted', async () => {
    const gate = new OpenGate(1)
    await assert.rejects(gate.enter(AbortSignal.abort(new Error('too late'))), /too late/)
    assert.deepEqual(gate.size, { active: 0, waiting: 0 })
  })
})
