import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { Memory, renderLine, sentence, SENTENCES, shortId } from '../src/view/sentences.ts'

const ROOT = new URL('../../../', import.meta.url)
const P1 = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN'
const P2 = '12D3KooWLqZ6x1fQ5rqCJk7nEFb8ZbJ4c2o9yH1VxmRYtB3sx7Q'

/** Event names in the first column of docs/events.md's table. */
function documentedEvents (): string[] {
  const text = readFileSync(new URL('docs/events.md', ROOT), 'utf8')
  return [...text.matchAll(/^\| `([a-z-]+\.[a-z-]+)` \|/gm)].map(m => m[1] ?? '')
}

/** Keys of the EventMap interface in the library's events.ts. */
function eventMapKeys (): string[] {
  const text = readFileSync(new URL('packages/node/src/events.ts', ROOT), 'utf8')
  const body = text.slice(text.indexOf('export interface EventMap {'), text.indexOf('export type EventName'))
  return [...body.matchAll(/^ {2}'([a-z-]+\.[a-z-]+)': /gm)].map(m => m[1] ?? '')
}

describe('terminal sentences', () => {
  it('has a sentence for every event in docs/events.md, and documents every event it has', () => {
    const documented = documentedEvents()
    assert.ok(documented.length > 30, `parsed only ${documented.length} events from docs/events.md`)
    assert.deepEqual(documented.filter(name => !Object.hasOwn(SENTENCES, name)), [], 'events without a sentence')
    assert.deepEqual(Object.keys(SENTENCES).filter(name => !documented.includes(name)), [], 'sentences for undocumented events')
  })

  it('has a sentence for every event in the EventMap', () => {
    const keys = eventMapKeys()
    assert.ok(keys.length > 30, `parsed only ${keys.length} events from events.ts`)
    assert.deepEqual(keys.filter(name => !Object.hasOwn(SENTENCES, name)), [])
    assert.deepEqual(Object.keys(SENTENCES).filter(name => !keys.includes(name)), [])
  })

  it('shortens peer ids to their first and last four characters', () => {
    assert.equal(shortId(P2), '12D3...sx7Q')
  })

  it('says a tunnel is live, with how long the punch before it took', () => {
    const memory = new Memory()
    sentence({ event: 'holepunch.succeeded', peer: P2, attempt: 1, method: 'tcp-simultaneous-open', role: 'initiator', ms: 1400, addr: '/ip4/11.0.0.2/tcp/4001' }, memory)
    assert.equal(sentence({ event: 'tunnel.activated', tunnel: 'ssh@127.0.0.1:2222', peer: P2, service: 'ssh', path: 'direct' }, memory),
      'tunnel ssh@127.0.0.1:2222 is live: direct to 12D3...sx7Q, punched in 1.4 s')
    assert.equal(sentence({ event: 'tunnel.activated', tunnel: 'ssh@127.0.0.1:2222', peer: P2, service: 'ssh', path: 'relay' }, memory),
      'tunnel ssh@127.0.0.1:2222 is live: relay to 12D3...sx7Q')
  })

  it('lists where a node listens without repeating its own id', () => {
    assert.equal(sentence({ event: 'node.started', peerId: P1, role: 'public', addrs: [`/ip4/203.0.113.7/tcp/4001/p2p/${P1}`, '/ip4/10.0.0.2/tcp/4001'] }),
      'node 12D3...nXTN started as a public node, listening on /ip4/203.0.113.7/tcp/4001, /ip4/10.0.0.2/tcp/4001')
  })

  it('gives the exact --bootstrap value, or the --announce hint', () => {
    const addr = `/ip4/203.0.113.7/tcp/4001/p2p/${P1}`
    assert.equal(sentence({ event: 'node.bootstrap-hint', addrs: [addr], reachable: true }), `others join with: --bootstrap ${addr}`)
    assert.equal(sentence({ event: 'node.bootstrap-hint', addrs: [`/ip4/10.0.0.2/tcp/4001/p2p/${P1}`], reachable: false, announce: '/ip4/<public ip>/tcp/4001' }),
      `only private addresses: peers on this network join with --bootstrap /ip4/10.0.0.2/tcp/4001/p2p/${P1}; ` +
      'for peers beyond it, start with --announce /ip4/<public ip>/tcp/4001')
    assert.equal(sentence({ event: 'node.bootstrap-hint', addrs: [], reachable: false }), 'no address others could join with: give --listen (and --announce behind NAT)')
  })

  it('words connection totals in KiB/MiB and seconds', () => {
    assert.equal(sentence({ event: 'tunnel.closed', side: 'client', tunnel: 'echo@127.0.0.1:2222', peer: P2, service: 'echo', bytesIn: 1048576, bytesOut: 2560, ms: 41 }),
      'tunnel echo@127.0.0.1:2222: connection closed after 41 ms, 1.0 MiB in, 2.5 KiB out')
    assert.equal(sentence({ event: 'tunnel.rejected', side: 'server', peer: P1, service: 'ssh', reason: 'not-allowed' }),
      'refused ssh to 12D3...nXTN (not-allowed)')
    assert.equal(sentence({ event: 'bootstrap.dial-failed', addr: `/ip4/203.0.113.7/tcp/4001/p2p/${P1}`, attempt: 3, retryInMs: 4000, error: 'ECONNREFUSED' }),
      `cannot reach bootstrap /ip4/203.0.113.7/tcp/4001/p2p/${P1} (attempt 3): ECONNREFUSED; retrying in 4.0 s`)
  })

  it('escapes control characters in peer-supplied strings', () => {
    const line = sentence({ event: 'tunnel.rejected', side: 'client', tunnel: 'x@127.0.0.1:1', peer: P1, service: 'x', reason: 'bad-request', message: 'evil\x1b]0;owned\x07\r\nFAKE LINE' })
    assert.equal(line, 'tunnel x@127.0.0.1:1: 12D3...nXTN refused x (bad-request: evil\\x1b]0;owned\\x07\\x0d\\x0aFAKE LINE)')
    assert.equal(sentence({ event: 'service.published', name: 'a\u202eb' }), 'service a\\u202eb is published')
    assert.doesNotMatch(sentence({ event: 'no.such-event', note: 'a\x1bb', list: ['\x07'] }), /[\x00-\x1f]/)
  })

  it('prefixes the time and marks warnings and errors', () => {
    const memory = new Memory()
    const time = new Date(2026, 10, 25, 10, 0, 1, 120).toISOString()
    assert.equal(renderLine({ level: 30, time, event: 'service.published', name: 'ssh' }, memory), '10:00:01.120 service ssh is published\n')
    assert.equal(renderLine({ level: 40, time, event: 'tunnel.rejected-suppressed', side: 'server', peer: '*', count: 7, reasons: { 'not-allowed': 7 }, windowMs: 60_000 }, memory),
      '10:00:01.120 WARN refused other peers 7 more times in the last 1m 00s (7 not-allowed)\n')
    assert.equal(renderLine({ level: 40, time, event: 'relay.lost', relay: P1 }, memory), '10:00:01.120 WARN lost the relay slot on 12D3...nXTN; reserving again\n')
    assert.match(renderLine({ level: 50, time, event: 'other' }, memory), /^10:00:01\.120 ERROR other\n$/)
  })
})
