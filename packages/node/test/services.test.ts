import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { validateConfig } from '../src/config.ts'
import { describeServices, ServiceTable } from '../src/protocol/services.ts'

const A = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'
const B = '12D3KooWSTrqRiX7VmAocYibHVWuNkmmCdkYj7XidphoYvLui6xD'
const KEY = new Uint8Array(32)

/** Services without a list are opened with --allow-any: these tests are about what an admitted peer may reach. */
function table (raw: Parameters<typeof validateConfig>[0]): ServiceTable {
  return new ServiceTable(validateConfig({ ...(raw.allow == null ? { allowAny: true } : {}), ...raw }))
}

describe('ServiceTable', () => {
  it('admits a known service and hands out its target', () => {
    const t = table({ expose: ['ssh=127.0.0.1:22'] })
    const a = t.admit({ peer: A, service: 'ssh', transport: 'tcp' })
    assert.ok(a.ok)
    assert.deepEqual(a.target, { host: '127.0.0.1', port: 22 })
  })

  const refusals: Array<[string, Parameters<typeof validateConfig>[0], Parameters<ServiceTable['admit']>[0], string]> = [
    ['an unknown service', { expose: ['ssh=127.0.0.1:22'] }, { peer: A, service: 'web', transport: 'tcp' }, 'unknown-service'],
    ['UDP to a TCP service', { expose: ['ssh=127.0.0.1:22'] }, { peer: A, service: 'ssh', transport: 'udp' }, 'wrong-transport'],
    ['TCP to a UDP service', { expose: ['dns=127.0.0.1:53/udp'] }, { peer: A, service: 'dns', transport: 'tcp' }, 'wrong-transport'],
    ['a peer off the node list', { allow: [A], expose: ['ssh=127.0.0.1:22'] }, { peer: B, service: 'ssh', transport: 'tcp' }, 'not-allowed'],
    ['a peer off the service list, though on the node list', { allow: [A], expose: [`ssh=127.0.0.1:22?allow=${B}`] },
      { peer: A, service: 'ssh', transport: 'tcp' }, 'not-allowed'],
    ['a destination outside the networks', { exposeNet: ['lan=192.168.1.0/24:22'] },
      { peer: A, service: 'lan', transport: 'tcp', destination: { host: '192.168.2.1', port: 22 } }, 'destination-not-allowed'],
    ['a destination on another port', { exposeNet: ['lan=192.168.1.0/24:22,8000-8100'] },
      { peer: A, service: 'lan', transport: 'tcp', destination: { host: '192.168.1.7', port: 8101 } }, 'destination-not-allowed'],
    ['a host name as destination', { exposeNet: ['lan=0.0.0.0/0:22'] },
      { peer: A, service: 'lan', transport: 'tcp', destination: { host: 'localhost', port: 22 } }, 'destination-not-allowed'],
    ['an IPv6 destination outside the v6 network', { exposeNet: ['v6=fd00:1::/64:22'] },
      { peer: A, service: 'v6', transport: 'tcp', destination: { host: 'fd00:2::1', port: 22 } }, 'destination-not-allowed'],
    ['no destination for a net service', { exposeNet: ['lan=192.168.1.0/24:22'] }, { peer: A, service: 'lan', transport: 'tcp' }, 'bad-request'],
    ['a destination for a fixed service', { expose: ['ssh=127.0.0.1:22'] },
      { peer: A, service: 'ssh', transport: 'tcp', destination: { host: '127.0.0.1', port: 22 } }, 'bad-request']
  ]
  for (const [what, raw, request, reason] of refusals) {
    it(`refuses ${what}: ${reason}`, () => {
      const a = table(raw).admit(request)
      assert.equal(a.ok, false)
      assert.equal(!a.ok && a.reason, reason)
    })
  }

  it('admits destinations inside the networks and ports, IPv4 and IPv6', () => {
    const t = table({ exposeNet: ['lan=192.168.1.0/24,10.0.0.5:22,8000-8100', 'v6=fd00:1::/64:22/udp'] })
    for (const destination of [{ host: '192.168.1.254', port: 22 }, { host: '10.0.0.5', port: 8050 }]) {
      const a = t.admit({ peer: A, service: 'lan', transport: 'tcp', destination })
      assert.ok(a.ok && a.target.host === destination.host && a.target.port === destination.port)
    }
    assert.ok(t.admit({ peer: A, service: 'v6', transport: 'udp', destination: { host: 'fd00:1::9', port: 22 } }).ok)
  })

  it('counts sessions per node and per peer; a release frees one slot, once', () => {
    const t = table({ expose: ['ssh=127.0.0.1:22'], maxSessions: 3, maxSessionsPerPeer: 2 })
    const a1 = t.admit({ peer: A, service: 'ssh', transport: 'tcp' })
    const a2 = t.admit({ peer: A, service: 'ssh', transport: 'tcp' })
    assert.ok(a1.ok && a2.ok)
    assert.equal(t.admit({ peer: A, service: 'ssh', transport: 'tcp' }).ok, false, 'third for one peer')
    const b1 = t.admit({ peer: B, service: 'ssh', transport: 'tcp' })
    assert.ok(b1.ok)
    const full = t.admit({ peer: B, service: 'ssh', transport: 'tcp' })
    assert.equal(!full.ok && full.reason, 'too-many-sessions', 'fourth for the node')
    if (a1.ok) { a1.release(); a1.release() }
    assert.equal(t.sessions, 2)
    assert.ok(t.admit({ peer: B, service: 'ssh', transport: 'tcp' }).ok)
    assert.equal(t.admit({ peer: A, service: 'ssh', transport: 'tcp' }).ok, false, 'the double release freed only one slot')
  })

  it('lists the services open to every peer', () => {
    assert.deepEqual(table({ expose: ['a=127.0.0.1:1', `b=127.0.0.1:2?allow=${A}`], exposeNet: ['c=10.0.0.0/8:1'] }).unrestricted, ['a', 'c'])
    assert.deepEqual(table({ allow: [B], expose: ['a=127.0.0.1:1', 'b=127.0.0.1:2?allow=any'] }).unrestricted, ['b'])
    assert.deepEqual(new ServiceTable(validateConfig({ swarmKey: KEY, expose: ['a=127.0.0.1:1'] })).unrestricted, [], 'a mesh is not every peer')
  })

  it('admits every peer to a mesh service and only the listed ones to a listed service', () => {
    const t = new ServiceTable(validateConfig({ swarmKey: KEY, expose: ['mesh=127.0.0.1:1', `listed=127.0.0.1:2?allow=${A}`] }))
    assert.ok(t.admit({ peer: B, service: 'mesh', transport: 'tcp' }).ok)
    assert.ok(t.admit({ peer: A, service: 'listed', transport: 'tcp' }).ok)
    const refused = t.admit({ peer: B, service: 'listed', transport: 'tcp' })
    assert.equal(!refused.ok && refused.reason, 'not-allowed')
  })
})

describe('ServiceTable: --expose-net destinations on this host', () => {
  const refused: Array<[string, string, string]> = [
    ['IPv4 loopback mapped into IPv6, through ::/0', '::/0', '::ffff:127.0.0.1'],
    ['the same in hex spelling, through ::/0', '::/0', '::ffff:7f00:1'],
    ['the same spelled out in full, through ::/0', '::/0', '0:0:0:0:0:ffff:127.0.0.1'],
    ['mapped IPv4 loopback, through 0.0.0.0/0', '0.0.0.0/0', '::ffff:127.0.0.1'],
    ['IPv4 loopback, through 0.0.0.0/0', '0.0.0.0/0', '127.0.0.1'],
    ['IPv4 loopback, through 96.0.0.0/3', '96.0.0.0/3', '127.0.0.53'],
    ['unspecified IPv4, through 0.0.0.0/0', '0.0.0.0/0', '0.0.0.0'],
    ['IPv6 loopback, through ::/0', '::/0', '::1'],
    ['unspecified IPv6, through ::/0', '::/0', '::'],
    ['IPv6 loopback, through ::/127', '::/127', '::1'],
    ['mapped 10.0.0.5, which IPv4 networks do not cover', '192.168.0.0/16', '::ffff:10.0.0.5'],
    ['IPv6 loopback with a zone id, through ::/0', '::/0', '::1%lo'],
    ['mapped IPv4 loopback with a zone id, through ::/0', '::/0', '::ffff:127.0.0.1%lo'],
    ['a LAN address with a zone id, through fe80::/10', 'fe80::/10', 'fe80::1%eth0']
  ]
  for (const [what, network, host] of refused) {
    it(`refuses ${what}`, () => {
      const a = table({ exposeNet: [`net=${network}:22`] }).admit({ peer: A, service: 'net', transport: 'tcp', destination: { host, port: 22 } })
      assert.equal(!a.ok && a.reason, 'destination-not-allowed')
    })
  }

  const admitted: Array<[string, string, string, string]> = [
    ['IPv4 loopback through 127.0.0.0/8, which names it', '127.0.0.0/8', '127.0.0.1', '127.0.0.1'],
    ['mapped IPv4 loopback through 127.0.0.1, as IPv4', '127.0.0.1', '::ffff:127.0.0.1', '127.0.0.1'],
    ['IPv6 loopback through ::1/128', '::1/128', '::1', '::1'],
    ['a mapped LAN address through its IPv4 network, as IPv4', '10.0.0.0/8', '::ffff:10.1.2.3', '10.1.2.3'],
    ['a public address through 0.0.0.0/0', '0.0.0.0/0', '93.184.216.34', '93.184.216.34'],
    ['loopback, where a second network names it beside a broad one', '0.0.0.0/0,127.0.0.0/8', '127.0.0.1', '127.0.0.1']
  ]
  for (const [what, networks, host, target] of admitted) {
    it(`admits ${what}`, () => {
      const a = table({ exposeNet: [`net=${networks}:22`] }).admit({ peer: A, service: 'net', transport: 'tcp', destination: { host, port: 22 } })
      assert.ok(a.ok)
      assert.deepEqual(a.target, { host: target, port: 22 })
    })
  }
})

describe('describeServices', () => {
  it('says who may use each service: the listed ids, any, or the mesh', () => {
    const open = validateConfig({ allowAny: true, expose: ['a=127.0.0.1:1', `b=127.0.0.1:2?allow=${A}`], exposeNet: ['c=10.0.0.0/8:1/udp'] })
    assert.deepEqual(describeServices(open), [
      { name: 'a', target: '127.0.0.1:1', access: 'any' },
      { name: 'b', target: '127.0.0.1:2', access: [A] },
      { name: 'c', target: '10.0.0.0/8:1/udp', access: 'any' }
    ])
    const listed = validateConfig({ allow: [A, B], expose: ['a=127.0.0.1:1', 'b=127.0.0.1:2?allow=any'] })
    assert.deepEqual(describeServices(listed).map(s => s.access), [[A, B], 'any'])
    assert.deepEqual(describeServices(validateConfig({ swarmKey: KEY, expose: ['a=127.0.0.1:1'] })).map(s => s.access), ['mesh'])
  })
})
