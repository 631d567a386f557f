import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { parseSpliceTicket } from '../src/splice/offer.ts'

const TOKEN = 'ab'.repeat(32)

describe('splice offers: token and port', () => {
  it('takes a 64-hex-character token and a TCP port', () => {
    const ticket = parseSpliceTicket({ from: 'x', token: TOKEN, port: 4003 })
    assert.equal(ticket?.port, 4003)
    assert.equal(ticket?.token.toString('hex'), TOKEN)
    assert.equal(parseSpliceTicket({ token: TOKEN.toUpperCase(), port: 65_535 })?.port, 65_535)
    assert.equal(parseSpliceTicket({ token: TOKEN, port: 1 })?.port, 1)
  })

  const bad: Array<[string, Record<string, unknown>]> = [
    ['a short token', { token: 'ab'.repeat(31), port: 4003 }],
    ['a long token', { token: 'ab'.repeat(33), port: 4003 }],
    ['an empty token', { token: '', port: 4003 }],
    ['a token with non-hex characters', { token: 'zz'.repeat(32), port: 4003 }],
    ['a token that is not a string', { token: 1234, port: 4003 }],
    ['no token', { port: 4003 }],
    ['port 0', { token: TOKEN, port: 0 }],
    ['port 65536', { token: TOKEN, port: 65_536 }],
    ['a negative port', { token: TOKEN, port: -1 }],
    ['a fractional port', { token: TOKEN, port: 4003.5 }],
    ['a port as a string', { token: TOKEN, port: '4003' }],
    ['no port', { token: TOKEN }]
  ]
  for (const [what, frame] of bad) {
    it(`refuses ${what}`, () => { assert.equal(parseSpliceTicket(frame), undefined) })
  }
})
