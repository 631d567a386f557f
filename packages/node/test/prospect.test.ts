/** Whether round 1 is worth waiting for, from the candidates (holepunch/prospect.ts). */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { endpointDependentSign, punchProspect, sideSign } from '../src/holepunch/prospect.ts'

// As the lab's routers map them: cone and full cone keep the listen port, symmetric picks another.
const cone = ['/ip4/11.0.0.11/tcp/40100', '/ip4/10.1.0.2/tcp/40100']
const symmetric = ['/ip4/11.0.0.12/tcp/58577', '/ip4/10.2.0.2/tcp/40200']
const publicHost = ['/ip4/11.0.0.21/tcp/4001']

describe('punch prospect', () => {
  it('a NAT that keeps the listen port, or no NAT, is promising', () => {
    assert.equal(endpointDependentSign(cone), undefined)
    assert.equal(endpointDependentSign(publicHost), undefined)
    assert.deepEqual(punchProspect([cone], [cone]), { promising: true })
    assert.deepEqual(punchProspect([publicHost], [cone]), { promising: true })
  })

  it('a NAT that moved the listen port to another looks endpoint-dependent, on either side', () => {
    assert.match(endpointDependentSign(symmetric) ?? '', /40200 to 11\.0\.0\.12:58577/)
    const mine = punchProspect([symmetric], [cone])
    assert.equal(mine.promising, false)
    assert.match(mine.promising ? '' : mine.reason, /^this side:/)
    const theirs = punchProspect([cone], [symmetric])
    assert.match(theirs.promising ? '' : theirs.reason, /^the peer:/)
  })

  it('one public candidate on the listen port (a port mapping, a stale observation) is enough', () => {
    assert.equal(endpointDependentSign(['/ip4/11.0.0.12/tcp/58577', '/ip4/11.0.0.12/tcp/40200', '/ip4/10.2.0.2/tcp/40200']), undefined)
  })

  it('a global IPv6 candidate is promising whatever IPv4 does', () => {
    assert.equal(endpointDependentSign([...symmetric, '/ip6/2001:470::5/tcp/40200']), undefined)
  })

  it('too little to judge is promising: no observed mapping, no listen address, garbage', () => {
    assert.equal(endpointDependentSign(['/ip4/10.2.0.2/tcp/40200']), undefined)
    assert.equal(endpointDependentSign([]), undefined)
    assert.equal(endpointDependentSign(['not an address', '/dns4/x/tcp/1']), undefined)
  })

  it('with UDP candidates too, a side looks hopeless only when both transports show it', () => {
    const udpCone = ['/ip4/11.0.0.12/udp/40300', '/ip4/10.2.0.2/udp/40300']
    const udpSymmetric = ['/ip4/11.0.0.12/udp/61000', '/ip4/10.2.0.2/udp/40300']
    assert.equal(sideSign([symmetric, udpCone]), undefined)
    assert.match(sideSign([symmetric, udpSymmetric]) ?? '', /40200/)
    assert.match(sideSign([symmetric, []]) ?? '', /40200/)
    assert.equal(punchProspect([cone, []], [symmetric, udpCone]).promising, true)
  })
})
