import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createLogger } from '../src/logger.ts'
import { capture, lines } from './fixtures.ts'

describe('logger', () => {
  it('writes one JSON object per line to stdout when stdout is not a terminal', async () => {
    const io = { stdout: capture(false), stderr: capture() }
    const logger = await createLogger('info', io)
    logger.info({ event: 'tunnel.activated', tunnel: 'echo@127.0.0.1:2222', path: 'direct' })
    const [line, ...rest] = lines(io.stdout.text())
    assert.deepEqual(rest, [])
    const record = JSON.parse(line ?? '')
    assert.deepEqual(Object.keys(record), ['level', 'time', 'event', 'tunnel', 'path'])
    assert.equal(record.level, 30)
    assert.equal(new Date(record.time).toISOString(), record.time)
    assert.equal(record.event, 'tunnel.activated')
    assert.equal(io.stderr.text(), '')
  })

  it('drops records below the level, and everything at silent', async () => {
    const io = { stdout: capture(false), stderr: capture() }
    const logger = await createLogger('warn', io)
    logger.info({ event: 'a' })
    logger.debug({ event: 'b' })
    logger.warn({ event: 'c' })
    assert.deepEqual(lines(io.stdout.text()).map(l => JSON.parse(l).event), ['c'])

    const silent = { stdout: capture(false), stderr: capture() }
    const quiet = await createLogger('silent', silent)
    quiet.error({ event: 'd' })
    assert.equal(silent.stdout.text() + silent.stderr.text(), '')
  })

  it('writes one sentence per record on stderr when stdout is a terminal', async () => {
    const io = { stdout: capture(true), stderr: capture() }
    const logger = await createLogger('info', io)
    logger.info({ event: 'node.started', peerId: '12D3KooWabcdefgh', addrs: ['/ip4/127.0.0.1/tcp/4001'], role: 'public' })
    logger.warn({ event: 'service.unrestricted', name: 'web' })
    assert.equal(io.stdout.text(), '')
    const [started, warning, ...rest] = lines(io.stderr.text())
    assert.deepEqual(rest, [])
    assert.match(started ?? '', /^\d\d:\d\d:\d\d\.\d{3} node 12D3\.\.\.efgh started as a public node, listening on \/ip4\/127\.0\.0\.1\/tcp\/4001$/)
    assert.match(warning ?? '', /^\d\d:\d\d:\d\d\.\d{3} WARN service web is open to every peer \(--allow-any or \?allow=any\)$/)
  })
})
