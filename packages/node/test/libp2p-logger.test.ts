import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { libp2pLogger } from '../src/libp2p-logger.ts'

describe('libp2p logging', () => {
  it('is off without DEBUG: every logger, and every scope made from it, is disabled', () => {
    const components = libp2pLogger({})
    assert.ok(components != null)
    const log = components.forComponent('libp2p:yamux')
    const scoped = log.newScope('stream').newScope('mss:select')
    assert.equal(log.enabled, false)
    assert.equal(scoped.enabled, false)
    assert.doesNotThrow(() => { scoped('%s', 'x'); scoped.error('e'); scoped.trace('t') })
  })

  it('is libp2p\'s own when DEBUG names something, so DEBUG=libp2p:* still prints', () => {
    assert.equal(libp2pLogger({ DEBUG: 'libp2p:connection-monitor*' }), undefined)
  })
})
