import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { BindError, ConfigError } from '@punchgate/node'
import { reportError, UsageError } from '../src/errors.ts'
import { capture, cli, lines, tempDir } from './fixtures.ts'

function report (err: unknown, showStack = false): [number, string] {
  const stderr = capture()
  const code = reportError(err, stderr, showStack)
  return [code, stderr.text()]
}

describe('error report', () => {
  it('maps usage errors to exit 2 with a pointer to --help', () => {
    assert.deepEqual(report(new ConfigError('expose', 'x', 'expected NAME=HOST:PORT')),
      [2, 'punchgate: --expose "x": expected NAME=HOST:PORT (see punchgate --help)\n'])
    assert.deepEqual(report(new UsageError('Unknown argument: x')), [2, 'punchgate: Unknown argument: x (see punchgate --help)\n'])
  })

  it('maps runtime errors and anything else to exit 1', () => {
    assert.deepEqual(report(new BindError('tunnel-by-name', 'a@127.0.0.1:1', '127.0.0.1:1', 'EADDRINUSE')),
      [1, 'punchgate: --tunnel-by-name "a@127.0.0.1:1": cannot bind 127.0.0.1:1: EADDRINUSE\n'])
    assert.deepEqual(report(new Error('boom')), [1, 'punchgate: boom\n'])
    assert.deepEqual(report('a string'), [1, 'punchgate: a string\n'])
  })

  it('matches on kind, so an error from another copy of the library still counts as usage', () => {
    const foreign = Object.assign(new Error('--listen "x": bad'), { name: 'ConfigError', kind: 'usage' })
    assert.equal(report(foreign)[0], 2)
  })

  it('folds a multi-line message into one line', () => {
    assert.deepEqual(report(new UsageError('Invalid values:\n  Argument: log-level')),
      [2, 'punchgate: Invalid values: Argument: log-level (see punchgate --help)\n'])
  })

  it('adds the stack only when asked', () => {
    assert.equal(lines(report(new Error('boom'))[1]).length, 1)
    assert.match(report(new Error('boom'), true)[1], /^punchgate: boom\nError: boom\n\s+at /)
  })

  it('shows the stack with PUNCHGATE_DEBUG set or at --log-level debug', async t => {
    const dir = await tempDir(t)
    const withDebugEnv = await cli(['--expose', 'x', '--identity', dir], { PUNCHGATE_DEBUG: '1' })
    assert.equal(withDebugEnv.code, 2)
    assert.match(withDebugEnv.stderr, /\n\s+at /)
    const withDebugLevel = await cli(['id', '--identity', dir], { PUNCHGATE_LOG_LEVEL: 'debug' })
    assert.equal(withDebugLevel.code, 1)
    assert.match(withDebugLevel.stderr, /\n\s+at /)
    const withFlag = await cli(['--expose', 'x', '--identity', dir, '--log-level', 'debug'])
    assert.match(withFlag.stderr, /\n\s+at /)
  })
})
