import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { ConfigError, mayBePublic, parseExpose, parseTunnel, parseTunnelByName, startsPublic, validateConfig } from '../src/index.ts'

const PEER = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'

describe('spec parsers', () => {
  const good: Array<[string, () => unknown, unknown]> = [
    ['expose v4', () => parseExpose('ssh=127.0.0.1:22'), { name: 'ssh', target: { host: '127.0.0.1', port: 22 } }],
    ['expose host name', () => parseExpose('db=localhost:5432'), { name: 'db', target: { host: 'localhost', port: 5432 } }],
    ['expose v6', () => parseExpose('web=[::1]:8080'), { name: 'web', target: { host: '::1', port: 8080 } }],
    ['tunnel by peer', () => parseTunnel(`${PEER}:ssh@127.0.0.1:2222`),
      { id: `${PEER}:ssh@127.0.0.1:2222`, peer: PEER, service: 'ssh', bind: { host: '127.0.0.1', port: 2222 } }],
    ['tunnel by name', () => parseTunnelByName('ssh@127.0.0.1:2222'),
      { id: 'ssh@127.0.0.1:2222', service: 'ssh', bind: { host: '127.0.0.1', port: 2222 } }],
    ['tunnel bind port 0 picks a free port', () => parseTunnelByName('ssh@127.0.0.1:0').bind, { host: '127.0.0.1', port: 0 }]
  ]
  for (const [what, parse, expected] of good) {
    it(`accepts ${what}`, () => assert.deepEqual(parse(), expected))
  }

  const bad: Array<[string, () => unknown, RegExp]> = [
    ['expose without =', () => parseExpose('ssh127.0.0.1:22'), /NAME=HOST:PORT/],
    ['expose without port', () => parseExpose('ssh=127.0.0.1'), /HOST:PORT/],
    ['expose port 0', () => parseExpose('ssh=127.0.0.1:0'), /out of range/],
    ['expose port 65536', () => parseExpose('ssh=127.0.0.1:65536'), /out of range/],
    ['expose empty name', () => parseExpose('=127.0.0.1:22'), /service name/],
    ['expose name with a slash', () => parseExpose('a/b=127.0.0.1:22'), /service name/],
    ['expose bracketed non-v6', () => parseExpose('ssh=[nope]:22'), /IPv6/],
    ['tunnel with a bad peer id', () => parseTunnel('notapeer:ssh@127.0.0.1:2222'), /not a peer id/],
    ['tunnel without @', () => parseTunnel(`${PEER}:ssh`), /PEER:SERVICE@HOST:PORT/],
    ['tunnel-by-name without @', () => parseTunnelByName('ssh'), /SERVICE@HOST:PORT/],
    ['tunnel-by-name bad bind', () => parseTunnelByName('ssh@127.0.0.1:x'), /HOST:PORT/]
  ]
  for (const [what, parse, message] of bad) {
    it(`rejects ${what} with a ConfigError`, () => {
      assert.throws(parse, (err: unknown) => err instanceof ConfigError && message.test(err.message))
    })
  }
})

describe('validateConfig', () => {
  it('fills the defaults: quic and tcp on all interfaces, relay sized for real traffic', () => {
    const config = validateConfig({})
    assert.deepEqual(config.listen, ['/ip4/0.0.0.0/udp/0/quic-v1', '/ip4/0.0.0.0/tcp/0'])
    assert.equal(config.relay.maxBytes, 4n * 1024n ** 3n)
    assert.equal(config.relay.maxDurationMs, 24 * 3600_000)
  })

  it('listens nowhere with --listen none, only on a private node and only on its own', () => {
    const boot = `/ip4/11.0.0.2/tcp/4001/p2p/${PEER}`
    assert.deepEqual(validateConfig({ listen: ['none'], bootstrap: [boot] }).listen, [])
    assert.throws(() => validateConfig({ listen: ['none'] }), /public and must listen/)
    assert.throws(() => validateConfig({ listen: ['none', '/ip4/0.0.0.0/tcp/0'], bootstrap: [boot] }), /cannot be combined/)
  })

  it('splices on a public node by default: the TCP listen host, port + 1 when fixed; off on request or without TCP', () => {
    assert.deepEqual(validateConfig({}).relaySplice, { at: { host: '0.0.0.0', port: 0 }, explicit: false })
    assert.deepEqual(validateConfig({ listen: ['/ip4/0.0.0.0/udp/4001/quic-v1', '/ip4/0.0.0.0/tcp/4001'] }).relaySplice, { at: { host: '0.0.0.0', port: 4002 }, explicit: false })
    assert.deepEqual(validateConfig({ listen: ['/ip6/::/tcp/4001'] }).relaySplice?.at, { host: '::', port: 4002 })
    assert.equal(validateConfig({ listen: ['/ip4/0.0.0.0/udp/4001/quic-v1'] }).relaySplice, undefined)
    assert.equal(validateConfig({ relaySplice: 'off' }).relaySplice, undefined)
    assert.deepEqual(validateConfig({ relaySplice: '11.0.0.2:7000' }).relaySplice, { at: { host: '11.0.0.2', port: 7000 }, explicit: true })
    assert.throws(() => validateConfig({ relaySplice: '7000' }), /--relay-splice "7000": expected HOST:PORT/)
    const boot = `/ip4/11.0.0.2/tcp/4001/p2p/${PEER}`
    assert.equal(validateConfig({ bootstrap: [boot], role: 'private' }).relaySplice, undefined, 'a private node runs no splicer')
    assert.throws(() => validateConfig({ bootstrap: [boot], role: 'private', relaySplice: '0.0.0.0:4002' }), /only a public node runs a relay server, never one with --role private/)
    assert.deepEqual(validateConfig({ bootstrap: [boot], role: 'public', relaySplice: '0.0.0.0:4002' }).relaySplice, { at: { host: '0.0.0.0', port: 4002 }, explicit: true })
    // --role auto with a bootstrap becomes public once reachable: its splicer settings are kept for then.
    assert.deepEqual(validateConfig({ bootstrap: [boot] }).relaySplice, { at: { host: '0.0.0.0', port: 0 }, explicit: false })
  })

  it('takes --role auto, public or private; private needs a bootstrap', () => {
    const boot = `/ip4/11.0.0.2/tcp/4001/p2p/${PEER}`
    assert.equal(validateConfig({}).role, 'auto')
    assert.equal(startsPublic(validateConfig({})), true, 'auto without a bootstrap is public')
    assert.equal(startsPublic(validateConfig({ bootstrap: [boot] })), false, 'auto with a bootstrap starts private')
    assert.equal(startsPublic(validateConfig({ bootstrap: [boot], role: 'public' })), true)
    assert.equal(startsPublic(validateConfig({ bootstrap: [boot], role: 'private' })), false)
    assert.equal(mayBePublic(validateConfig({ bootstrap: [boot] })), true)
    assert.equal(mayBePublic(validateConfig({ bootstrap: [boot], listen: ['none'] })), false)
    assert.throws(() => validateConfig({ role: 'private' }), (err: unknown) => err instanceof ConfigError && err.flag === 'role' && /needs --bootstrap/.test(err.message))
    assert.throws(() => validateConfig({ role: 'relay' }), (err: unknown) => err instanceof ConfigError && err.flag === 'role' && /auto, public or private/.test(err.message))
    assert.throws(() => validateConfig({ role: 'public', bootstrap: [boot], listen: ['none'] }), /--role public must listen/)
  })

  it('rejects a bootstrap address without /p2p', () => {
    assert.throws(() => validateConfig({ bootstrap: ['/ip4/11.0.0.2/tcp/4001'] }), /\/p2p/)
  })

  it('rejects a duplicate service name', () => {
    assert.throws(() => validateConfig({ expose: ['a=127.0.0.1:1', 'a=127.0.0.1:2'] }), /duplicate service name/)
  })

  it('rejects two tunnels on one bind address, but allows several on port 0', () => {
    assert.throws(() => validateConfig({ tunnelByName: ['a@127.0.0.1:2222', 'b@127.0.0.1:2222'] }), /used by another tunnel/)
    assert.equal(validateConfig({ tunnelByName: ['a@127.0.0.1:0', 'b@127.0.0.1:0'] }).tunnels.length, 2)
  })
})

describe('provider trust: ?peer= and --trust', () => {
  const OTHER = '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK'

  it('?peer= on a by-name tunnel lists the providers it trusts, deduplicated', () => {
    const spec = parseTunnelByName(`ssh@127.0.0.1:2222?peer=${PEER},${OTHER},${PEER}`)
    assert.deepEqual(spec, {
      id: `ssh@127.0.0.1:2222?peer=${PEER},${OTHER},${PEER}`, service: 'ssh', bind: { host: '127.0.0.1', port: 2222 }, trust: [PEER, OTHER]
    })
    assert.deepEqual(parseTunnelByName(`dns@127.0.0.1:53/udp?peer=${PEER}`).transport, 'udp')
  })

  const bad: Array<[string, string, RegExp]> = [
    ['an empty ?peer= list', 'ssh@127.0.0.1:2222?peer=', /needs a comma-separated list/],
    ['a bad id in ?peer=', 'ssh@127.0.0.1:2222?peer=nope', /"nope" is not a peer id/],
    ['an unknown option', `ssh@127.0.0.1:2222?allow=${PEER}`, /unknown option "allow" \(the only one is \?peer=/]
  ]
  for (const [what, spec, message] of bad) {
    it(`refuses ${what}`, () => {
      assert.throws(() => parseTunnelByName(spec), (err: Error) => err.name === 'ConfigError' && message.test(err.message) && err.message.includes('--tunnel-by-name'))
    })
  }

  it('refuses ?peer= on --tunnel, which names its peer already', () => {
    assert.throws(() => parseTunnel(`${PEER}:ssh@127.0.0.1:2222?peer=${OTHER}`), /--tunnel already names its peer/)
  })

  it('--trust takes canonical peer ids, deduplicated; a bad one names the flag', () => {
    assert.deepEqual(validateConfig({ trust: [PEER, ` ${OTHER} `, PEER] }).trust, [PEER, OTHER])
    assert.deepEqual(validateConfig({}).trust, [])
    assert.throws(() => validateConfig({ trust: ['nope'] }), (err: Error) => err instanceof ConfigError && /^--trust "nope"/.test(err.message))
  })

  it('UDP punching is on by default (--no-udp-punch turns it off); --udp-punch-port takes 0-65535 (0: any free port)', () => {
    assert.equal(validateConfig({}).udpPunch, true)
    assert.equal(validateConfig({ udpPunch: false }).udpPunch, false)
    assert.equal(validateConfig({}).udpPunchPort, 0)
    assert.equal(validateConfig({ udpPunch: true, udpPunchPort: 4002 }).udpPunchPort, 4002)
    for (const bad of [-1, 65536, 1.5, Number.NaN]) {
      assert.throws(() => validateConfig({ udpPunchPort: bad }), (err: unknown) => err instanceof ConfigError && err.flag === 'udp-punch-port')
    }
  })
})
