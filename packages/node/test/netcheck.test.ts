import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { chooseRole, classifyMapping, globalIPv6, punchMethods, type Observation, type PunchInput } from '../src/netcheck/verdicts.ts'

const PEER_A = '12D3KooWAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
const PEER_B = '12D3KooWBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB'
const OWN = ['127.0.0.1', '10.1.0.2']

function seen (observer: string, mapped: string | undefined, peer = PEER_A): Observation {
  return { transport: 'tcp', peer, observer, ...(mapped != null ? { mapped } : { error: 'connection refused' }) }
}

describe('netcheck: mapping from observations', () => {
  it('one public port seen by two observers is endpoint-independent (cone)', () => {
    const v = classifyMapping([seen('11.0.0.2:4001', '11.0.0.11:40000'), seen('11.0.0.2:4003', '11.0.0.11:40000')], OWN)
    assert.equal(v.mapping, 'endpoint-independent')
    assert.deepEqual(v.mapped, ['11.0.0.11:40000'])
  })

  it('a port per observer is endpoint-dependent (symmetric), also across two public nodes', () => {
    const v = classifyMapping([seen('11.0.0.2:4001', '11.0.0.11:17246'), seen('11.0.0.3:4001', '11.0.0.11:37025', PEER_B)], OWN)
    assert.equal(v.mapping, 'endpoint-dependent')
    assert.deepEqual(v.mapped, ['11.0.0.11:17246', '11.0.0.11:37025'])
  })

  it('an address of this host itself is no NAT, whatever the ports', () => {
    assert.equal(classifyMapping([seen('11.0.0.2:4001', '10.1.0.2:1'), seen('11.0.0.2:4003', '10.1.0.2:2')], OWN).mapping, 'none')
    assert.equal(classifyMapping([seen('11.0.0.2:4001', '10.1.0.2:1')], OWN).mapping, 'none')
  })

  it('one observer, failed observers or dials from new ports measure nothing', () => {
    assert.equal(classifyMapping([seen('11.0.0.2:4001', '11.0.0.11:1')], OWN).mapping, 'unknown')
    assert.equal(classifyMapping([seen('11.0.0.2:4001', '11.0.0.11:1'), seen('11.0.0.2:4003', undefined)], OWN).mapping, 'unknown')
    assert.equal(classifyMapping([], OWN).mapping, 'unknown')
    const noReuse = classifyMapping([seen('11.0.0.2:4001', '11.0.0.11:1'), seen('11.0.0.2:4003', '11.0.0.11:2')], OWN, false)
    assert.equal(noReuse.mapping, 'unknown')
    assert.match(noReuse.reason, /SO_REUSEPORT/)
  })

  it('the same observer twice is still one observer', () => {
    assert.equal(classifyMapping([seen('11.0.0.2:4001', '11.0.0.11:1'), seen('11.0.0.2:4001', '11.0.0.11:1')], OWN).mapping, 'unknown')
  })
})

describe('netcheck: role', () => {
  it('follows the reach probe verdict under --role auto with bootstraps', () => {
    const reach = (outcome: 'reachable' | 'unreachable', reason: string) => ({ outcome, peer: PEER_A, ip: '11.0.0.11', port: 4001, open: true, reason })
    assert.deepEqual(chooseRole('auto', true, reach('reachable', 'bootstrap reached 11.0.0.21:4001')), { role: 'public', reason: 'bootstrap reached 11.0.0.21:4001' })
    assert.equal(chooseRole('auto', true, reach('unreachable', 'reachable at 11.0.0.11:4001 through a NAT')).role, 'private')
    assert.deepEqual(chooseRole('auto', true, { outcome: 'not-asked', reason: 'busy' }), { role: 'undetermined', reason: 'busy' })
  })

  it('--role fixes it, and no bootstrap is a public node', () => {
    assert.equal(chooseRole('private', true, { outcome: 'reachable', peer: PEER_A, ip: '1.2.3.4', port: 1, open: true, reason: '' }).role, 'private')
    assert.equal(chooseRole('public', true, { outcome: 'unreachable', peer: PEER_A, ip: '1.2.3.4', port: 1, open: false, reason: '' }).role, 'public')
    assert.equal(chooseRole('auto', false, { outcome: 'not-asked', reason: '' }).role, 'public')
  })
})

describe('netcheck: punch methods', () => {
  const base: PunchInput = {
    role: 'private', tcp: 'endpoint-independent', udp: 'endpoint-independent', udpPunch: true, reusePort: true, portMapping: { natPmp: false, pcp: false, upnpIgd: false, asked: true, gateway: '10.1.0.1' }, reachOpen: false, reachedPublicNode: true,
    ipv6: { addrs: [], listening: false }
  }
  const works = (input: PunchInput): Record<string, boolean> => Object.fromEntries(punchMethods(input).map(p => [p.method, p.works]))

  it('a cone NAT on Linux can punch over TCP; a symmetric one is left with the relay', () => {
    assert.deepEqual(works(base), { direct: false, 'port-mapping': false, 'tcp-punch': true, 'ipv6-punch': false, 'udp-punch': true, relay: true })
    assert.deepEqual(works({ ...base, tcp: 'endpoint-dependent', udp: 'endpoint-dependent' }), { direct: false, 'port-mapping': false, 'tcp-punch': false, 'ipv6-punch': false, 'udp-punch': false, relay: true })
  })

  it('no TCP punch without SO_REUSEPORT or without a measurement', () => {
    assert.equal(works({ ...base, reusePort: false })['tcp-punch'], false)
    assert.equal(works({ ...base, tcp: 'unknown' })['tcp-punch'], false)
  })

  it('a public node is dialed directly; a router that answers maps ports', () => {
    assert.equal(works({ ...base, role: 'public', tcp: 'none' }).direct, true)
    assert.equal(works({ ...base, portMapping: { natPmp: true, pcp: false, upnpIgd: false, asked: true, gateway: '10.1.0.1' } })['port-mapping'], true)
    const notAsked = punchMethods({ ...base, portMapping: { natPmp: false, pcp: false, upnpIgd: false, asked: false } }).find(p => p.method === 'port-mapping')
    assert.match(notAsked?.reason ?? '', /not asked/)
  })

  it('a port open only through a full cone is not called direct, and says why', () => {
    const v = punchMethods({ ...base, reachOpen: true }).find(p => p.method === 'direct')
    assert.equal(v?.works, false)
    assert.match(v?.reason ?? '', /full cone/)
  })

  it('an IPv6 punch needs a global IPv6 address, an IPv6 listener and Linux, whatever the IPv4 NAT does', () => {
    const ipv6 = { addrs: ['2001:db9:a::2'], listening: true }
    const verdict = (input: PunchInput): { works: boolean, reason: string } | undefined => punchMethods(input).find(p => p.method === 'ipv6-punch')
    assert.equal(verdict({ ...base, tcp: 'endpoint-dependent', ipv6 })?.works, true)
    assert.match(verdict(base)?.reason ?? '', /no global IPv6/)
    assert.match(verdict({ ...base, ipv6: { ...ipv6, listening: false } })?.reason ?? '', /--listen \/ip6\/::\/tcp\/PORT/)
    assert.equal(verdict({ ...base, ipv6: { ...ipv6, listening: false } })?.works, false)
    assert.equal(verdict({ ...base, ipv6, reusePort: false })?.works, false)
  })

  it('a UDP punch follows the UDP mapping, whatever TCP does, and needs it on at both ends; --no-udp-punch says it is off', () => {
    const verdict = (input: PunchInput): { works: boolean, reason: string } | undefined => punchMethods(input).find(p => p.method === 'udp-punch')
    assert.equal(verdict({ ...base, tcp: 'endpoint-dependent' })?.works, true)
    assert.match(verdict(base)?.reason ?? '', /both ends/)
    assert.deepEqual(verdict({ ...base, udpPunch: false }), { method: 'udp-punch', works: false, reason: 'turned off here (--no-udp-punch)' })
    assert.equal(verdict({ ...base, udp: 'endpoint-dependent' })?.works, false)
    assert.equal(verdict({ ...base, udp: 'unknown' })?.works, false)
    assert.equal(verdict({ ...base, udp: 'none' })?.works, true)
  })
})

describe('netcheck: global IPv6', () => {
  it('keeps 2000::/3 only', () => {
    const addrs = [
      { family: 'IPv6', address: '2a01:4f8::1', internal: false },
      { family: 'IPv6', address: '3fff::1', internal: false },
      { family: 'IPv6', address: 'fe80::1', internal: false },
      { family: 'IPv6', address: 'fd00::1', internal: false },
      { family: 'IPv6', address: '2::1', internal: false },
      { family: 'IPv6', address: '::1', internal: true },
      { family: 'IPv4', address: '203.0.113.1', internal: false }
    ]
    assert.deepEqual(globalIPv6(addrs), ['2a01:4f8::1', '3fff::1'])
  })
})

describe('netcheck: what a bootstrap can make it dial', () => {
  it('only plain TCP and QUIC addresses on the IP it was dialed at', async () => {
    const { multiaddr } = await import('@multiformats/multiaddr')
    const { sameHost } = await import('../src/netcheck/netcheck.ts')
    const dialed = multiaddr('/ip4/11.0.0.2/tcp/4001/p2p/12D3KooWLywDHaXJgAZ1Pbc7gwzcCCfnevmRQJhK3w9pXYB52Ytf')
    const listed = [
      '/ip4/11.0.0.2/tcp/4003', '/ip4/11.0.0.2/udp/4001/quic-v1', '/ip4/127.0.0.1/tcp/4001', '/ip4/10.0.0.5/tcp/22',
      '/ip4/11.0.0.3/tcp/4001', '/ip4/11.0.0.2/tcp/4004/ws', '/ip4/11.0.0.2/tcp/4001/p2p/12D3KooWLywDHaXJgAZ1Pbc7gwzcCCfnevmRQJhK3w9pXYB52Ytf/p2p-circuit'
    ].map(a => multiaddr(a))
    assert.deepEqual(sameHost(dialed, listed).map(String), ['/ip4/11.0.0.2/tcp/4003', '/ip4/11.0.0.2/udp/4001/quic-v1'])
  })
})

describe('netcheck: the router probe (fake router on loopback)', () => {
  const gateway = { ip: '127.0.0.1', iface: 'lo', localIp: '127.0.0.1' }

  async function fakeRouter (answer: (msg: Buffer) => Buffer | undefined): Promise<{ port: number, seen: Buffer[], close: () => void }> {
    const { createSocket } = await import('node:dgram')
    const socket = createSocket('udp4')
    const seen: Buffer[] = []
    socket.on('message', (msg, rinfo) => {
      seen.push(msg)
      const reply = answer(msg)
      if (reply != null) socket.send(reply, rinfo.port, rinfo.address)
    })
    socket.bind(0, '127.0.0.1')
    await new Promise(resolve => socket.once('listening', resolve))
    return { port: socket.address().port, seen, close: () => socket.close() }
  }

  it('PCP: an ANNOUNCE answered in version 2 counts; a NAT-PMP-only answer (version 0) does not', async () => {
    const { answersPcp } = await import('../src/netcheck/router.ts')
    const { announceRequest } = await import('../src/portmap/pcp.ts')
    const pcp = await fakeRouter(msg => msg[0] === 2 ? Buffer.concat([Buffer.from([2, 0x80, 0, 0]), Buffer.alloc(20)]) : undefined)
    const natPmpOnly = await fakeRouter(() => Buffer.from([0, 0x80, 0, 1]))
    try {
      assert.equal(await answersPcp(gateway, AbortSignal.timeout(2000), { port: pcp.port }), true)
      assert.deepEqual(pcp.seen[0], announceRequest('127.0.0.1'))
      assert.equal(pcp.seen[0]?.length, 24)
      // Our address as IPv4-mapped IPv6 in bytes 8-23 (RFC 6887 7.1): ::ffff:127.0.0.1.
      assert.deepEqual([...(pcp.seen[0] ?? Buffer.alloc(0)).subarray(8, 24)], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1])
      assert.equal(await answersPcp(gateway, AbortSignal.timeout(600), { port: natPmpOnly.port }), false)
    } finally {
      pcp.close()
      natPmpOnly.close()
    }
  })

  it('with port mapping off, asks no one (not even for the gateway)', async () => {
    const { askRouter } = await import('../src/netcheck/router.ts')
    let looked = false
    const answers = await askRouter(false, AbortSignal.timeout(1000), async () => { looked = true; return gateway })
    assert.deepEqual(answers, { asked: false, natPmp: false, pcp: false, upnpIgd: false })
    assert.equal(looked, false)
  })
})
