import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { LogLimit, OVERFLOW_KEY, type LogLimitTimers, type Suppressed } from '../src/log-limit.ts'

/** A clock that moves only when told, firing the timers that fall due. */
function fakeTimers (): LogLimitTimers & { advance: (ms: number) => void, pending: () => number } {
  let now = 0
  let timers: Array<{ at: number, fn: () => void }> = []
  return {
    now: () => now,
    setTimeout: (fn, ms) => { const t = { at: now + ms, fn }; timers.push(t); return t },
    clearTimeout: t => { timers = timers.filter(x => x !== t) },
    advance: ms => {
      const end = now + ms
      for (;;) {
        const due = timers.filter(t => t.at <= end).sort((a, b) => a.at - b.at)[0]
        if (due == null) break
        timers = timers.filter(t => t !== due)
        now = due.at
        due.fn()
      }
      now = end
    },
    pending: () => timers.length
  }
}

function limiter (options: { burst?: number, maxKeys?: number } = {}): { limit: LogLimit, timers: ReturnType<typeof fakeTimers>, summaries: Suppressed[] } {
  const timers = fakeTimers()
  const summaries: Suppressed[] = []
  const limit = new LogLimit({ onSuppressed: s => summaries.push(s), windowMs: 60_000, timers, ...options })
  return { limit, timers, summaries }
}

describe('LogLimit', () => {
  it('lets the first few lines of a key through, then counts the rest into one summary when the window ends', () => {
    const { limit, timers, summaries } = limiter({ burst: 5 })
    const allowed = Array.from({ length: 1000 }, (_, i) => limit.allow('peer-a', i % 2 === 0 ? 'not-allowed' : 'bad-request'))
    assert.equal(allowed.filter(Boolean).length, 5)
    assert.deepEqual(allowed.slice(0, 6), [true, true, true, true, true, false])
    assert.deepEqual(summaries, [], 'no summary before the window ends')
    timers.advance(59_999)
    assert.deepEqual(summaries, [])
    timers.advance(1)
    assert.deepEqual(summaries, [{ key: 'peer-a', count: 995, reasons: { 'not-allowed': 497, 'bad-request': 498 }, windowMs: 60_000 }])
    assert.equal(timers.pending(), 0, 'no timer left once every window has ended')
  })

  it('starts a fresh budget in the next window', () => {
    const { limit, timers, summaries } = limiter({ burst: 2 })
    assert.deepEqual([limit.allow('p'), limit.allow('p'), limit.allow('p')], [true, true, false])
    timers.advance(60_000)
    assert.equal(summaries.length, 1)
    assert.deepEqual([limit.allow('p'), limit.allow('p'), limit.allow('p')], [true, true, false])
  })

  it('keeps each key to its own budget and reports nothing for a key that stayed within it', () => {
    const { limit, timers, summaries } = limiter({ burst: 1 })
    assert.equal(limit.allow('a'), true)
    assert.equal(limit.allow('b'), true)
    assert.equal(limit.allow('b'), false)
    timers.advance(60_000)
    assert.deepEqual(summaries.map(s => [s.key, s.count]), [['b', 1]])
  })

  it('ends windows in the order they started, each a full window after its first line', () => {
    const { limit, timers, summaries } = limiter({ burst: 0 })
    limit.allow('early')
    timers.advance(30_000)
    limit.allow('late')
    timers.advance(30_000)
    assert.deepEqual(summaries.map(s => s.key), ['early'])
    timers.advance(30_000)
    assert.deepEqual(summaries.map(s => s.key), ['early', 'late'])
  })

  it('puts keys beyond maxKeys under one shared overflow entry', () => {
    const { limit, timers, summaries } = limiter({ burst: 2, maxKeys: 3 })
    const allowed = Array.from({ length: 50 }, (_, i) => limit.allow(`peer-${i}`)).filter(Boolean).length
    assert.equal(allowed, 3 + 2, 'three tracked keys, then the overflow entry\'s budget of two')
    timers.advance(60_000)
    assert.deepEqual(summaries.map(s => [s.key, s.count]), [[OVERFLOW_KEY, 45]])
  })

  it('reports what is held back on close, and refuses lines afterwards', () => {
    const { limit, timers, summaries } = limiter({ burst: 1 })
    limit.allow('a')
    limit.allow('a')
    limit.close()
    limit.close()
    assert.deepEqual(summaries.map(s => [s.key, s.count]), [['a', 1]])
    assert.equal(timers.pending(), 0)
    assert.equal(limit.allow('b'), false)
  })
})
