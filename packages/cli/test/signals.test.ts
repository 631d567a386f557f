import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { trapShutdownSignals } from '../src/commands/run.ts'

/** Stands in for `process`: emits signals and records exit codes. */
function fakeProcess (): EventEmitter & { exits: number[], exit: (code: number) => void } {
  const exits: number[] = []
  return Object.assign(new EventEmitter(), { exits, exit: (code: number) => { exits.push(code) } })
}

describe('shutdown signals', () => {
  it('the first signal asks for a clean stop, the second exits at once', () => {
    const target = fakeProcess()
    const trap = trapShutdownSignals(target)
    assert.equal(trap.signal.aborted, false)

    target.emit('SIGTERM', 'SIGTERM')
    assert.equal(trap.signal.aborted, true)
    assert.equal(trap.signal.reason, 'SIGTERM')
    assert.deepEqual(target.exits, [])

    target.emit('SIGINT', 'SIGINT')
    assert.deepEqual(target.exits, [130])
  })

  it('a second SIGTERM exits with 143', () => {
    const target = fakeProcess()
    trapShutdownSignals(target)
    target.emit('SIGTERM', 'SIGTERM')
    target.emit('SIGTERM', 'SIGTERM')
    assert.deepEqual(target.exits, [143])
  })

  it('release removes its listeners, giving the signals back their default', () => {
    const target = fakeProcess()
    const trap = trapShutdownSignals(target)
    assert.equal(target.listenerCount('SIGINT') + target.listenerCount('SIGTERM'), 2)
    trap.release()
    assert.equal(target.listenerCount('SIGINT') + target.listenerCount('SIGTERM'), 0)
  })
})
