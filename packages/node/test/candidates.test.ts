import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { NetworkInterfaceInfo } from 'node:os'
import { multiaddr } from '@multiformats/multiaddr'
import { announceable, globalIPv6, localScope, offerable, unmapped, usableCandidates, usableIp, usableProviderAddr, type CandidateScope } from '../src/holepunch/candidates.ts'
import { PeerBudget } from '../src/holepunch/budget.ts'
import { punchCandidates } from '../src/holepunch/observed.ts'

function iface (cidr: string, internal = false): NetworkInterfaceInfo {
  const address = cidr.split('/')[0] ?? ''
  const common = { address, cidr, internal, mac: '00:00:00:00:00:00', netmask: '' }
  return address.includes(':') ? { ...common, family: 'IPv6', scopeid: 0 } : { ...common, family: 'IPv4' }
}

/** A host on a home LAN 192.168.1.0/24 and a ULA fd00:1::/64, with loopback. */
const HOME: CandidateScope = {
  interfaces: [iface('127.0.0.1/8', true), iface('::1/128', true), iface('192.168.1.4/24'), iface('fd00:1::4/64'), iface('fe80::1/64')]
}

describe('candidate filter: what a peer can make us dial', () => {
  const refused: Array<[string, string]> = [
    ['IPv4 loopback', '127.0.0.1'], ['IPv4 loopback, elsewhere in 127/8', '127.8.9.10'], ['IPv6 loopback', '::1'],
    ['IPv4 unspecified', '0.0.0.0'], ['IPv6 unspecified', '::'], ['this-network 0/8', '0.1.2.3'],
    ['IPv4 link-local', '169.254.10.1'], ['IPv6 link-local', 'fe80::1234'],
    ['IPv4 multicast', '224.0.0.251'], ['IPv6 multicast', 'ff02::1'], ['broadcast', '255.255.255.255'], ['reserved 240/4', '240.0.0.1'],
    ['IPv4-mapped loopback', '::ffff:127.0.0.1'], ['IPv4-mapped loopback, hex form', '::ffff:7f00:1'],
    ['IPv4-compatible loopback', '::127.0.0.1'],
    ['our own LAN address', '192.168.1.4'], ['our own LAN address, mapped', '::ffff:192.168.1.4'], ['our own ULA', 'fd00:1::4'],
    ['RFC 1918 outside our subnets', '10.0.0.5'], ['RFC 1918 next to our subnet', '192.168.2.7'], ['172.16/12', '172.20.0.1'],
    ['carrier-grade NAT 100.64/10', '100.64.1.1'], ['ULA outside our subnet', 'fd00:2::7'], ['mapped private outside our subnets', '::ffff:10.0.0.5'],
    ['not an IP', 'example.com']
  ]
  for (const [what, ip] of refused) {
    it(`refuses ${what} (${ip})`, () => { assert.equal(usableIp(ip, HOME), false) })
  }

  const allowed: Array<[string, string]> = [
    ['a public IPv4 address', '8.8.8.8'], ['the NAT lab\'s "internet" 11/8', '11.0.0.12'], ['a public IPv6 address', '2a00:1450::1'],
    ['a peer on our LAN', '192.168.1.77'], ['a peer on our ULA subnet', 'fd00:1::9'], ['a mapped public address', '::ffff:8.8.8.8'],
    ['a mapped peer on our LAN', '::ffff:c0a8:14d']
  ]
  for (const [what, ip] of allowed) {
    it(`allows ${what} (${ip})`, () => { assert.equal(usableIp(ip, HOME), true) })
  }

  it('judges IPv4-mapped IPv6 as the IPv4 address it maps', () => {
    assert.deepEqual(unmapped('::ffff:7f00:1'), { ip: '127.0.0.1', family: 'ipv4' })
    assert.deepEqual(unmapped('::ffff:10.1.2.3'), { ip: '10.1.2.3', family: 'ipv4' })
    assert.deepEqual(unmapped('0:0:0:0:0:ffff:b00:c'), { ip: '11.0.0.12', family: 'ipv4' })
    assert.deepEqual(unmapped('2001:db8::1'), { ip: '2001:db8::1', family: 'ipv6' })
  })

  it('filters a peer\'s punch candidates: never our own listener, even at a public address', () => {
    const scope = { ...HOME, ownAddrs: ['/ip4/11.0.0.11/tcp/4002'] }
    assert.deepEqual(usableCandidates([
      '/ip4/11.0.0.11/tcp/4002', '/ip4/11.0.0.11/tcp/4003', '/ip4/127.0.0.1/tcp/22', '/ip4/192.168.1.9/tcp/4002', '/ip4/10.9.9.9/tcp/4002',
      '/ip6/::ffff:7f00:1/tcp/22', 'junk'
    ], scope), ['/ip4/11.0.0.11/tcp/4003', '/ip4/192.168.1.9/tcp/4002'])
  })

  it('lets loopback through only when a test says so, and still never our own listener', () => {
    const scope = { ...HOME, allowLoopback: true, ownAddrs: ['/ip4/127.0.0.1/tcp/4001'] }
    assert.deepEqual(usableCandidates(['/ip4/127.0.0.1/tcp/4001', '/ip4/127.0.0.1/tcp/5000', '/ip4/169.254.1.1/tcp/1'], scope), ['/ip4/127.0.0.1/tcp/5000'])
    assert.equal(usableIp('127.0.0.1', localScope()), false, 'the default scope refuses loopback')
  })

  it('offers peers our addresses but never loopback, unspecified or link-local ones', () => {
    assert.deepEqual(offerable(['/ip4/11.0.0.11/tcp/1', '/ip4/192.168.1.4/tcp/1', '/ip4/127.0.0.1/tcp/1', '/ip4/0.0.0.0/tcp/1', '/ip6/fe80::1/tcp/1'], {}),
      ['/ip4/11.0.0.11/tcp/1', '/ip4/192.168.1.4/tcp/1'])
  })

  it('keeps a provider record\'s usable IP addresses, drops the rest', () => {
    const kept = ['/ip4/11.0.0.12/tcp/4001', '/ip4/127.0.0.1/tcp/22', '/ip4/10.0.0.1/tcp/1', '/dns4/localhost/tcp/22', '/ip4/192.168.1.5/udp/1/quic-v1']
      .filter(a => usableProviderAddr(multiaddr(a), HOME))
    assert.deepEqual(kept, ['/ip4/11.0.0.12/tcp/4001', '/ip4/192.168.1.5/udp/1/quic-v1'])
  })

  it('keeps a provider\'s relay circuit through a relay we are connected to, or whose address passes the filter', () => {
    const relay = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'
    const viaLoopback = multiaddr(`/ip4/127.0.0.1/tcp/22/p2p/${relay}/p2p-circuit`)
    assert.equal(usableProviderAddr(viaLoopback, HOME), false, 'a circuit whose relay hop is our loopback')
    assert.equal(usableProviderAddr(viaLoopback, HOME, peer => peer === relay), true, 'the relay is connected: its connection is reused')
    assert.equal(usableProviderAddr(multiaddr(`/ip4/11.0.0.2/tcp/4001/p2p/${relay}/p2p-circuit`), HOME), true)
    assert.equal(usableProviderAddr(multiaddr(`/p2p/${relay}/p2p-circuit`), HOME), true)
  })
})

describe('IPv6 punch candidates: a global address behind a stateful firewall', () => {
  it('counts only global unicast IPv6 outside the private ranges as global', () => {
    for (const ip of ['2a00:1450::1', '2001:db9:a::2', '3fff:1::1']) assert.equal(globalIPv6(ip), true, ip)
    for (const ip of ['2001:db8::1', 'fd00:1::4', 'fe80::1', '::1', '::', 'ff02::1', '::ffff:8.8.8.8', '64:ff9b::808:808', '8.8.8.8', 'junk']) {
      assert.equal(globalIPv6(ip), false, ip)
    }
  })

  const observed = ['/ip4/11.0.0.11/tcp/4001', '/ip6/2001:db9:a::2/tcp/4001']
  const announced = [multiaddr('/ip4/10.1.0.2/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'), multiaddr('/ip6/fd00:1::4/tcp/4001')]
  const listening = [
    multiaddr('/ip4/10.1.0.2/tcp/4001'), multiaddr('/ip4/11.0.0.21/tcp/4001'), multiaddr('/ip6/2001:db9:a::2/tcp/4001'),
    multiaddr('/ip6/2001:db9:a::99/tcp/4001'), multiaddr('/ip6/fd00:1::4/tcp/4001'), multiaddr('/ip6/fe80::1/tcp/4001'),
    multiaddr('/ip6/2001:db8::5/tcp/4001'), multiaddr('/ip6/::1/tcp/4001')
  ]

  it('offers observed mappings, then announced addresses, then the listeners\' global IPv6 addresses; never twice', () => {
    assert.deepEqual(punchCandidates(observed, announced, listening), [
      '/ip4/11.0.0.11/tcp/4001', '/ip6/2001:db9:a::2/tcp/4001', '/ip4/10.1.0.2/tcp/4001', '/ip6/fd00:1::4/tcp/4001', '/ip6/2001:db9:a::99/tcp/4001'
    ])
  })

  it('a listener\'s IPv4 interface addresses are not added (what IPv4 offers is unchanged)', () => {
    assert.deepEqual(punchCandidates([], [], [multiaddr('/ip4/11.0.0.21/tcp/4001'), multiaddr('/ip4/10.1.0.2/tcp/4001')]), [])
  })

  it('with no bootstrap over IPv6 the interface address is still offered, and a peer\'s filter lets it through', () => {
    const offered = punchCandidates(['/ip4/11.0.0.11/tcp/4001'], [], [multiaddr('/ip6/2001:db9:a::2/tcp/4002')])
    assert.deepEqual(offered, ['/ip4/11.0.0.11/tcp/4001', '/ip6/2001:db9:a::2/tcp/4002'])
    const peer: CandidateScope = { interfaces: [iface('127.0.0.1/8', true), iface('10.2.0.2/24'), iface('2001:db9:b::2/64'), iface('fe80::2/64')] }
    assert.deepEqual(usableCandidates(offered, peer), offered)
  })

  it('stops at MAX_PUNCH_CANDIDATES', () => {
    const many = Array.from({ length: 12 }, (_, i) => multiaddr(`/ip6/2001:db9:a::${i + 1}/tcp/4001`))
    assert.equal(punchCandidates([], [], many).length, 8)
  })
})

describe('per-peer budget', () => {
  it('allows `limit` uses per key per window, then refuses until the window passes', () => {
    let now = 0
    const budget = new PeerBudget({ limit: 2, windowMs: 1000, now: () => now })
    assert.deepEqual([budget.take('a'), budget.take('a'), budget.take('a'), budget.take('b')], [true, true, false, true])
    now = 999
    assert.equal(budget.take('a'), false)
    now = 1000
    assert.equal(budget.take('a'), true)
  })

  it('forgets the oldest key beyond maxKeys instead of growing', () => {
    const budget = new PeerBudget({ limit: 1, windowMs: 60_000, maxKeys: 2 })
    assert.equal(budget.take('a'), true)
    budget.take('b')
    budget.take('c')
    assert.equal(budget.take('a'), true, 'a was forgotten: its budget starts again')
    assert.equal(budget.take('c'), false, 'c is still remembered')
  })
})

describe('what a node announces (announceable)', () => {
  const R = '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK'
  const ann = (addrs: string[]): string[] => announceable(addrs.map(a => multiaddr(a))).map(a => a.toString())

  it('drops loopback, link-local and unspecified addresses, and circuits through them, when the node has others', () => {
    assert.deepEqual(ann([
      '/ip4/127.0.0.1/tcp/4001', '/ip4/10.1.0.2/tcp/4001', '/ip4/11.0.0.2/tcp/4001', '/ip6/::1/tcp/4001', '/ip4/169.254.3.4/tcp/4001',
      '/ip6/fe80::1/tcp/4001', '/ip4/0.0.0.0/tcp/4001',
      `/ip4/127.0.0.1/tcp/4001/p2p/${R}/p2p-circuit`, `/ip4/11.0.0.2/tcp/4001/p2p/${R}/p2p-circuit`, '/dns4/relay.example/tcp/4001'
    ]), ['/ip4/10.1.0.2/tcp/4001', '/ip4/11.0.0.2/tcp/4001', `/ip4/11.0.0.2/tcp/4001/p2p/${R}/p2p-circuit`, '/dns4/relay.example/tcp/4001'])
  })

  it('keeps loopback on a node that has nothing else (a mesh on one host)', () => {
    const all = ['/ip4/127.0.0.1/tcp/4001', '/ip4/127.0.0.1/udp/4001/quic-v1', `/ip4/127.0.0.1/tcp/4002/p2p/${R}/p2p-circuit`]
    assert.deepEqual(ann(all), all)
    const relayedOnly = [`/ip4/127.0.0.1/tcp/4002/p2p/${R}/p2p-circuit`]
    assert.deepEqual(ann(relayedOnly), relayedOnly)
  })
})
