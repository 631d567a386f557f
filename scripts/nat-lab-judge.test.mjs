// The NAT lab must fail a scenario whenever a target is missed; these cases need no root.
// Run: node --test scripts/nat-lab-judge.test.mjs
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { judge, markdownTable } from './nat-lab-judge.mjs'

const WORKHORSE = '12D3KooWorkhorse'
const OTHER = '12D3KooWBootstrap'
const MIB_100 = 100 * 2 ** 20

const scenario = (expectPath, limitSeconds = 5) =>
  ({ client: 'cone', workhorse: 'cone', expectPath, limitSeconds, workhorsePeer: WORKHORSE, impairments: 'none' })
const probe = (firstByteMs, extra = {}) =>
  ({ firstByteMs, bytes: MIB_100, receivedBytes: MIB_100, seconds: 2, mbPerSecond: 52.4, exact: true, ...extra })
const connected = (peer, direct) => ({ event: 'peer.connected', peer, direct, addr: '/ip4/11.0.0.12/tcp/1' })
const activated = path => ({ event: 'tunnel.activated', tunnel: 'echo@127.0.0.1:2222', peer: WORKHORSE, service: 'echo', path })
const opened = path => ({ event: 'tunnel.opened', side: 'client', peer: WORKHORSE, service: 'echo', path })

const directRun = [connected(OTHER, true), connected(WORKHORSE, false), connected(WORKHORSE, true), activated('direct'), opened('direct'), opened('direct')]
const relayRun = [connected(OTHER, true), connected(WORKHORSE, false), activated('relay'), opened('relay'), opened('relay')]

test('a direct tunnel within its time limit passes', () => {
  const result = judge('cone-cone', scenario('direct'), probe(1800), directRun)
  assert.deepEqual(result.failures, [])
  assert.equal(result.pass, true)
  assert.equal(result.path, 'direct')
  assert.equal(result.transferPath, 'direct')
})

test('ending on the relay fails a direct target', () => {
  const result = judge('cone-cone', scenario('direct', 15), probe(11_000), relayRun)
  assert.equal(result.pass, false)
  assert.deepEqual(result.failures, ['tunnel ended on relay, target direct', 'no direct connection to the workhorse'])
})

test('the last activation decides the path: relay then direct ends direct', () => {
  const events = [connected(WORKHORSE, false), activated('relay'), opened('relay'), connected(WORKHORSE, true), activated('direct'), opened('direct')]
  const result = judge('x', scenario('direct', 15), probe(11_000), events)
  assert.equal(result.pass, true)
  assert.deepEqual(result.pathChanges, ['relay', 'direct'])
})

test('the client punch column says when round 1 was judged hopeless, and the first byte\'s path is the first connection\'s', () => {
  const events = [connected(WORKHORSE, false), { event: 'holepunch.unpromising', peer: WORKHORSE, attempt: 1, reason: 'x' }, activated('relay'), opened('relay'),
    { event: 'holepunch.succeeded', peer: WORKHORSE, attempt: 1, ms: 300 }, connected(WORKHORSE, true), activated('direct'), opened('direct')]
  const result = judge('x', scenario('direct', 15), probe(1000), events)
  assert.equal(result.punch, 'unpromising, ok, round 1, 300 ms')
  assert.equal(result.firstBytePath, 'relay')
  assert.equal(result.transferPath, 'direct')
  const still = judge('x', scenario('relay', 15), probe(1000), events.slice(0, 4))
  assert.equal(still.punch, 'unpromising, round 1 still running')
})

test('a direct activation without a direct peer.connected to the workhorse fails', () => {
  const events = [connected(OTHER, true), connected(WORKHORSE, false), activated('direct'), opened('direct')]
  const result = judge('x', scenario('direct'), probe(1000), events)
  assert.deepEqual(result.failures, ['no direct connection to the workhorse'])
})

test('a first byte later than the limit fails', () => {
  const result = judge('x', scenario('direct', 5), probe(5100), directRun)
  assert.deepEqual(result.failures, ['first byte after 5.1 s, limit 5 s'])
})

test('a relay target fails when the tunnel went direct', () => {
  const result = judge('x', scenario('relay', 15), probe(1000), directRun)
  assert.deepEqual(result.failures, ['tunnel ended on direct, target relay'])
})

test('"any" accepts either path', () => {
  assert.equal(judge('x', scenario('any', 15), probe(7000), relayRun).pass, true)
  assert.equal(judge('x', scenario('any', 15), probe(2000), directRun).pass, true)
})

test('an echo that differs fails', () => {
  const result = judge('x', scenario('relay', 15), probe(7000, { exact: false, receivedBytes: MIB_100 - 1 }), relayRun)
  assert.deepEqual(result.failures, ['echo not byte-exact'])
})

test('the relay must carry at least 100 MB', () => {
  const small = { bytes: 10e6, receivedBytes: 10e6 }
  assert.deepEqual(judge('x', scenario('relay', 15), probe(7000, small), relayRun).failures,
    ['relay carried 10000000 bytes, target >= 100 MB'])
  // The same amount on a direct path is not held to the relay's figure.
  assert.equal(judge('x', scenario('direct'), probe(1000, small), directRun).pass, true)
})

test('a setup error or a probe error fails, with no echo at all', () => {
  const result = judge('x', { ...scenario('direct'), error: 'workhorse did not publish echo within 30 s' }, {}, [])
  assert.deepEqual(result.failures, ['workhorse did not publish echo within 30 s', 'no echo byte', 'tunnel ended on no path, target direct', 'no direct connection to the workhorse'])
  const probeFailed = judge('x', scenario('relay', 15), { error: 'no echo before the deadline' }, relayRun)
  assert.deepEqual(probeFailed.failures, ['probe: no echo before the deadline', 'no echo byte'])
})

test('start-up is the time from the launch to the first log record', () => {
  const startedMs = Date.parse('2026-11-25T10:00:00.000Z')
  const events = [{ event: 'tunnel.listening', time: '2026-11-25T10:00:00.750Z' }, ...directRun]
  const result = judge('x', { ...scenario('direct'), clientStartedMs: startedMs }, probe(1800), events)
  assert.equal(result.startupSeconds, 0.75)
  assert.equal(judge('x', scenario('direct'), probe(1800), events).startupSeconds, null)
})

test('events after the harness began stopping the daemons do not count', () => {
  const at = seconds => new Date(Date.parse('2026-11-25T10:00:00.000Z') + seconds * 1000).toISOString()
  const events = [
    { ...connected(WORKHORSE, true), time: at(1) },
    { ...activated('direct'), time: at(1) },
    { ...opened('direct'), time: at(2) },
    // The workhorse shuts down first: its direct connection closes, the tunnel falls back.
    { ...activated('relay'), time: at(9) }
  ]
  const measuredUntilMs = Date.parse(at(8))
  const result = judge('x', { ...scenario('direct'), measuredUntilMs }, probe(1800), events)
  assert.equal(result.path, 'direct')
  assert.equal(result.pass, true)
  assert.equal(judge('x', scenario('direct'), probe(1800), events).path, 'relay')
})

test('a scenario without a readable target fails', () => {
  const result = judge('x', {}, probe(1800), directRun)
  assert.equal(result.pass, false)
  assert.deepEqual(result.failures, ['no target: scenario.json missing or unreadable'])
})

test('the table shows every scenario with its verdict', () => {
  const table = markdownTable([
    judge('cone-cone', scenario('direct'), probe(1800), directRun),
    judge('symmetric-symmetric', scenario('direct', 15), probe(7000), relayRun)
  ])
  const lines = table.trim().split('\n')
  assert.equal(lines.length, 4)
  assert.match(lines[2], /^\| cone-cone \|.*\| direct \| yes \|.*\| 1\.8 s, direct \(- s\) \| 5 s \| - \| direct dial \| 52\.4 MB\/s \(direct\) \| yes, 100 MiB \| pass \|$/)
  assert.match(lines[3], /\| FAIL: tunnel ended on relay, target direct; no direct connection to the workhorse \|$/)
})

test('the punch column says which round won and whether over UDP (--udp-punch)', () => {
  const succeeded = method => ({ event: 'holepunch.succeeded', peer: WORKHORSE, attempt: 1, method, role: 'initiator', ms: 80, addr: '/ip4/11.0.0.12/udp/5000/udx' })
  assert.equal(judge('x', scenario('direct'), probe(1800), [...directRun, succeeded('udp-udx')]).punch, 'ok, round 1, 80 ms, UDP')
  assert.equal(judge('x', scenario('direct'), probe(1800), [...directRun, succeeded('tcp-simultaneous-open')]).punch, 'ok, round 1, 80 ms')
})

test('to direct counts from the launch to the first direct activation; method names what made the direct path', () => {
  const at = ms => new Date(Date.parse('2026-12-05T10:00:00.000Z') + ms).toISOString()
  const started = { ...scenario('direct'), clientStartedMs: Date.parse('2026-12-05T10:00:00.000Z') }
  const succeeded = (method, addr) => ({ event: 'holepunch.succeeded', peer: WORKHORSE, attempt: 1, method, role: 'initiator', ms: 80, addr, time: at(700) })
  const events = [{ ...activated('relay'), time: at(500) }, succeeded('tcp-simultaneous-open', '/ip4/11.0.0.12/tcp/4001'),
    { ...connected(WORKHORSE, true), time: at(700) }, { ...activated('direct'), time: at(750) }, opened('direct')]
  const result = judge('x', started, probe(900), events)
  assert.equal(result.directSeconds, 0.75)
  assert.equal(result.method, 'tcp simultaneous open')
  events[1] = succeeded('udp-udx', '/ip6/2001:db9:b::2/udp/4001/udx')
  assert.equal(judge('x', started, probe(900), events).method, 'udp, ipv6')
  events[1] = succeeded('udp-birthday', '/ip4/11.0.0.12/udp/40000/udx')
  assert.equal(judge('x', started, probe(900), events).method, 'udp birthday')
  const relayed = judge('x', started, probe(900), relayRun)
  assert.equal(relayed.directSeconds, null)
  assert.equal(relayed.method, 'relay')
})
