import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { silentLogger, startNode, validateConfig, type PunchgateNode } from '@punchgate/node'
import { cli } from './fixtures.ts'

// Loopback only; --no-port-mapping in every run, so nothing is sent to this host's router.
describe('punchgate netcheck (loopback)', () => {
  let bootstrap: PunchgateNode
  let addrs: string[]

  before(async () => {
    bootstrap = await startNode(validateConfig({ listen: ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0'], rttIntervalMs: 0, relaySplice: 'off' }), {
      privateKey: await generateKeyPair('Ed25519'), logger: silentLogger
    })
    addrs = bootstrap.addrs().filter(a => a.includes('/tcp/'))
    assert.equal(addrs.length, 2)
  })

  after(async () => {
    await bootstrap?.stop()
  })

  it('--json: both listen ports of one public node observe this host, at its own address: no NAT; the open port is on loopback, so not public', async () => {
    const { code, stdout, stderr } = await cli(['netcheck', '--json', '--no-port-mapping', '--bootstrap', addrs[0] ?? ''])
    assert.equal(code, 0, stderr)
    const report = JSON.parse(stdout)
    const tcp = report.observations.filter((o: { transport: string, mapped?: string }) => o.transport === 'tcp' && o.mapped != null)
    assert.equal(tcp.length, 2)
    assert.ok(tcp.every((o: { mapped: string, peer: string }) => o.mapped.startsWith('127.0.0.1:') && o.peer === bootstrap.peerId))
    assert.equal(report.tcp.mapping, 'none')
    // The bootstrap reached the port, but at 127.0.0.1: the daemon would not call that public either (reachability/decide.ts).
    assert.equal(report.reach.open, true)
    assert.equal(report.role.role, 'private')
    assert.match(report.role.reason, /loopback/)
    assert.equal(report.portMapping.asked, false)
    assert.equal(report.punch.find((p: { method: string }) => p.method === 'udp-punch').works, false)
  })

  it('text: says what was seen and what it means, in words', async () => {
    const { code, stdout } = await cli(['netcheck', '--no-port-mapping', '--bootstrap', addrs[0] ?? ''])
    assert.equal(code, 0)
    assert.match(stdout, /^Where public nodes saw this host:/)
    assert.match(stdout, /^ {2}TCP +127\.0\.0\.1:\d+ +127\.0\.0\.1:\d+ /m)
    assert.match(stdout, /^TCP mapping: +no NAT/m)
    assert.match(stdout, /^Port mapping: +not asked \(--no-port-mapping\)/m)
    assert.match(stdout, /^Role: +private: .*loopback/m)
    // The loopback bootstrap listens on TCP only: no UDP mapping to judge by.
    assert.match(stdout, /^ {2}no +udp-punch +the UDP mapping could not be measured/m)
  })

  it('exit 1 and one line when no public node answers', async () => {
    const dead = addrs[0]?.replace(/\/tcp\/\d+/, '/tcp/1') ?? ''
    const { code, stdout, stderr } = await cli(['netcheck', '--no-port-mapping', '--bootstrap', dead])
    assert.equal(code, 1)
    assert.equal(stdout, '')
    assert.match(stderr, /^punchgate: could not reach any public node \(1 bootstrap\): .+\n$/)
  })

  it('exit 2 without a bootstrap', async () => {
    const { code, stderr } = await cli(['netcheck', '--no-port-mapping'])
    assert.equal(code, 2)
    assert.match(stderr, /give --bootstrap/)
  })
})
