import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import {
  ConfigError, parseAllowFile, parseExpose, parseExposeNet, parseRelayMode, parseTunnel, parseTunnelByName, validateConfig, type RawConfig
} from '../src/index.ts'
import { parseBytes, parseDuration } from '../src/specs.ts'

const PEER = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'
const OTHER = '12D3KooWSTrqRiX7VmAocYibHVWuNkmmCdkYj7XidphoYvLui6xD'
const RELAY = `/ip4/11.0.0.2/tcp/4001/p2p/${PEER}`

describe('specs for UDP, access control, expose-net and relays', () => {
  const good: Array<[string, () => unknown, unknown]> = [
    ['expose udp', () => parseExpose('dns=127.0.0.1:53/udp'), { name: 'dns', target: { host: '127.0.0.1', port: 53 }, transport: 'udp' }],
    ['expose explicit tcp', () => parseExpose('ssh=127.0.0.1:22/tcp'), { name: 'ssh', target: { host: '127.0.0.1', port: 22 } }],
    ['expose with allow', () => parseExpose(`ssh=127.0.0.1:22?allow=${PEER},${OTHER}`),
      { name: 'ssh', target: { host: '127.0.0.1', port: 22 }, allow: [PEER, OTHER] }],
    ['expose open to any peer', () => parseExpose('web=127.0.0.1:80?allow=any'), { name: 'web', target: { host: '127.0.0.1', port: 80 }, allow: 'any' }],
    ['expose udp v6 with allow', () => parseExpose(`dns=[::1]:53/udp?allow=${PEER}`),
      { name: 'dns', target: { host: '::1', port: 53 }, transport: 'udp', allow: [PEER] }],
    ['tunnel-by-name udp', () => parseTunnelByName('dns@127.0.0.1:5353/udp'),
      { id: 'dns@127.0.0.1:5353/udp', service: 'dns', bind: { host: '127.0.0.1', port: 5353 }, transport: 'udp' }],
    ['tunnel udp', () => parseTunnel(`${PEER}:dns@127.0.0.1:5353/udp`),
      { id: `${PEER}:dns@127.0.0.1:5353/udp`, peer: PEER, service: 'dns', bind: { host: '127.0.0.1', port: 5353 }, transport: 'udp' }],
    ['tunnel-by-name with destination', () => parseTunnelByName('lan@127.0.0.1:2222>192.168.1.10:22'),
      { id: 'lan@127.0.0.1:2222>192.168.1.10:22', service: 'lan', bind: { host: '127.0.0.1', port: 2222 }, destination: { host: '192.168.1.10', port: 22 } }],
    ['tunnel with v6 destination over udp', () => parseTunnel(`${PEER}:lan@127.0.0.1:0/udp>[fd00::5]:53`).destination, { host: 'fd00::5', port: 53 }],
    ['expose-net', () => parseExposeNet('lan=192.168.1.0/24:22,80,443'), {
      name: 'lan', networks: [{ address: '192.168.1.0', prefix: 24, family: 'ipv4' }], ports: [{ from: 22, to: 22 }, { from: 80, to: 80 }, { from: 443, to: 443 }]
    }],
    ['expose-net v6, several networks, a range, udp, allow', () => parseExposeNet(`v6=fd00::/64,10.0.0.1:8000-8100/udp?allow=${PEER}`), {
      name: 'v6',
      networks: [{ address: 'fd00::', prefix: 64, family: 'ipv6' }, { address: '10.0.0.1', prefix: 32, family: 'ipv4' }],
      ports: [{ from: 8000, to: 8100 }],
      transport: 'udp',
      allow: [PEER]
    }],
    ['relay mode auto', () => parseRelayMode('auto'), { mode: 'auto' }],
    ['relay mode off', () => parseRelayMode('off'), { mode: 'off' }],
    ['relay mode multiaddr', () => parseRelayMode(RELAY), { mode: 'fixed', addr: RELAY }],
    ['sizes', () => ['1048576', '4GiB', '500MB', '64k'].map(v => parseBytes('x', v)), [1048576n, 4n * 1024n ** 3n, 500_000_000n, 64_000n]],
    ['durations', () => ['90', '90s', '30m', '24h', '7d', '500ms'].map(v => parseDuration('x', v)), [90_000, 90_000, 1_800_000, 86_400_000, 604_800_000, 500]]
  ]
  for (const [what, parse, expected] of good) {
    it(`accepts ${what}`, () => assert.deepEqual(parse(), expected))
  }

  const bad: Array<[string, () => unknown, RegExp]> = [
    ['an unknown transport', () => parseExpose('dns=127.0.0.1:53/sctp'), /HOST:PORT/],
    ['an unknown option', () => parseExpose(`ssh=127.0.0.1:22?deny=${PEER}`), /unknown option "deny"/],
    ['an empty allow list', () => parseExpose('ssh=127.0.0.1:22?allow='), /comma-separated list of peer ids/],
    ['allow=any mixed with a peer id', () => parseExpose(`ssh=127.0.0.1:22?allow=any,${PEER}`), /cannot be mixed with peer ids/],
    ['a bad peer id in allow', () => parseExpose('ssh=127.0.0.1:22?allow=nope'), /"nope" is not a peer id/],
    ['a host name as destination', () => parseTunnelByName('lan@127.0.0.1:2222>nas.lan:22'), /IP:PORT/],
    ['a destination without port', () => parseTunnelByName('lan@127.0.0.1:2222>192.168.1.10'), /IP:PORT/],
    ['a destination port 0', () => parseTunnelByName('lan@127.0.0.1:2222>192.168.1.10:0'), /out of range/],
    ['expose-net without ports', () => parseExposeNet('lan=192.168.1.0/24'), /CIDR/],
    ['expose-net bad network', () => parseExposeNet('lan=192.168.1.0/33:22'), /prefix length/],
    ['expose-net host name', () => parseExposeNet('lan=nas.lan:22'), /not an IP network/],
    ['expose-net bad port', () => parseExposeNet('lan=10.0.0.0/8:22,http'), /"http" is not a port/],
    ['expose-net reversed range', () => parseExposeNet('lan=10.0.0.0/8:90-80'), /"90-80"/],
    ['relay mode without peer id', () => parseRelayMode('/ip4/11.0.0.2/tcp/4001'), /auto, off, or a relay multiaddr/],
    ['relay mode circuit address', () => parseRelayMode(`${RELAY}/p2p-circuit`), /without \/p2p-circuit/],
    ['relay mode word', () => parseRelayMode('on'), /not a multiaddr/],
    ['size zero', () => parseBytes('relay-max-bytes', '0'), /positive size/],
    ['size with a bad unit', () => parseBytes('relay-max-bytes', '4 parsecs'), /positive size/],
    ['negative duration', () => parseDuration('relay-max-duration', '-5m'), /positive duration/]
  ]
  for (const [what, parse, message] of bad) {
    it(`rejects ${what} with a ConfigError`, () => {
      assert.throws(parse, (err: unknown) => err instanceof ConfigError && message.test(err.message))
    })
  }
})

describe('validateConfig: new options', () => {
  it('defaults: no allow list and not open to any, no limits, relay auto for anyone, no swarm key, 2 min UDP idle', () => {
    const c = validateConfig({})
    assert.deepEqual([c.allow, c.allowAny, c.exposeNet, c.limits, c.relayMode, c.relayAllow, c.swarmKey, c.udpIdleMs],
      [[], false, [], {}, { mode: 'auto' }, 'any', undefined, 120_000])
  })

  it('lets TCP and UDP tunnels share a bind address, but not two UDP ones', () => {
    assert.equal(validateConfig({ tunnelByName: ['dns@127.0.0.1:53', 'dns@127.0.0.1:53/udp'] }).tunnels.length, 2)
    assert.throws(() => validateConfig({ tunnelByName: ['a@127.0.0.1:53/udp', 'b@127.0.0.1:53/udp'] }), /used by another tunnel/)
  })

  it('keeps service names unique across --expose and --expose-net', () => {
    assert.throws(() => validateConfig({ expose: ['lan=127.0.0.1:22'], exposeNet: ['lan=10.0.0.0/8:22'] }),
      (err: unknown) => err instanceof ConfigError && err.flag === 'expose-net' && /duplicate/.test(err.message))
  })

  it('checks --allow peer ids and drops duplicates', () => {
    assert.deepEqual(validateConfig({ allow: [PEER, PEER, OTHER] }).allow, [PEER, OTHER])
    assert.throws(() => validateConfig({ allow: ['12D3KooWnope'] }), (err: unknown) => err instanceof ConfigError && err.flag === 'allow')
  })

  it('parses relay server limits, on a public node only', () => {
    const c = validateConfig({ relayMaxReservations: '16', relayMaxBytes: '1GiB', relayMaxDuration: '1h' })
    assert.deepEqual(c.relay, { maxReservations: 16, maxBytes: 1024n ** 3n, maxDurationMs: 3_600_000 })
    assert.throws(() => validateConfig({ bootstrap: [RELAY], role: 'private', relayMaxBytes: '1GiB' }), /only a public node/)
    assert.throws(() => validateConfig({ bootstrap: [RELAY], listen: ['none'], relayMaxBytes: '1GiB' }), /never one with --listen none/)
    assert.equal(validateConfig({ bootstrap: [RELAY], relayMaxBytes: '1GiB' }).relay.maxBytes, 1024n ** 3n, 'auto may become public')
    assert.throws(() => validateConfig({ relayMaxReservations: 'many' }), /positive whole number/)
  })

  it('relays only for allowed peers when asked, which needs an allow list', () => {
    assert.equal(validateConfig({ relayAllow: 'allowed', allow: [PEER] }).relayAllow, 'allowed')
    assert.throws(() => validateConfig({ relayAllow: 'allowed' }), /needs --allow/)
    assert.throws(() => validateConfig({ relayAllow: 'some' }), /any or allowed/)
  })

  it('parses session limits and the UDP idle timeout', () => {
    const c = validateConfig({ maxSessions: '100', maxSessionsPerPeer: 10, udpIdleTimeout: '30s' })
    assert.deepEqual(c.limits, { maxSessions: 100, maxSessionsPerPeer: 10 })
    assert.equal(c.udpIdleMs, 30_000)
    assert.throws(() => validateConfig({ maxSessions: '0' }), /max-sessions/)
  })

  it('with a swarm key, listens on TCP only by default and refuses QUIC addresses', () => {
    const swarmKey = new Uint8Array(1)
    assert.deepEqual(validateConfig({ swarmKey }).listen, ['/ip4/0.0.0.0/tcp/0'])
    assert.throws(() => validateConfig({ swarmKey, listen: ['/ip4/0.0.0.0/udp/0/quic-v1'] }), /QUIC cannot carry/)
    assert.throws(() => validateConfig({ swarmKey, bootstrap: [`/ip4/11.0.0.2/udp/4001/quic-v1/p2p/${PEER}`] }),
      (err: unknown) => err instanceof ConfigError && err.flag === 'bootstrap')
  })
})

describe('validateConfig: services closed unless said otherwise', () => {
  const noList: Array<[string, RawConfig, string]> = [
    ['--expose', { expose: ['ssh=127.0.0.1:22'] }, 'expose'],
    ['--expose-net', { exposeNet: ['lan=10.0.0.0/8:22'] }, 'expose-net'],
    ['a second service, when only the first has a list', { expose: [`a=127.0.0.1:1?allow=${PEER}`, 'b=127.0.0.1:2'] }, 'expose']
  ]
  for (const [what, raw, flag] of noList) {
    it(`refuses ${what} that nobody may use, naming the choices`, () => {
      assert.throws(() => validateConfig(raw), (err: unknown) => err instanceof ConfigError && err.flag === flag &&
        /nobody may use this service yet/.test(err.message) && /--allow PEER_ID/.test(err.message) &&
        /--allow-file PATH/.test(err.message) && /\?allow=PEER_ID/.test(err.message) && /--allow-any/.test(err.message))
    })
  }

  const accepted: Array<[string, RawConfig]> = [
    ['--allow', { allow: [PEER], expose: ['ssh=127.0.0.1:22'] }],
    ['?allow=PEER_ID', { expose: [`ssh=127.0.0.1:22?allow=${PEER}`] }],
    ['--allow-any', { allowAny: true, expose: ['ssh=127.0.0.1:22'], exposeNet: ['lan=10.0.0.0/8:22'] }],
    ['?allow=any', { exposeNet: ['lan=10.0.0.0/8:22?allow=any'] }],
    ['a swarm key (the mesh members)', { swarmKey: new Uint8Array(1), expose: ['ssh=127.0.0.1:22'] }]
  ]
  for (const [what, raw] of accepted) {
    it(`accepts a service opened by ${what}`, () => assert.doesNotThrow(() => validateConfig(raw)))
  }

  it('refuses --allow-any beside --allow, which would leave one of them meaningless', () => {
    assert.throws(() => validateConfig({ allowAny: true, allow: [PEER], expose: ['ssh=127.0.0.1:22'] }),
      (err: unknown) => err instanceof ConfigError && /cannot be combined with --allow-any/.test(err.message))
  })
})

describe('parseAllowFile', () => {
  it('reads the ids, skipping comments and blank lines', () => {
    assert.deepEqual(parseAllowFile('/etc/allow', `# laptop\n${PEER}\n\n${OTHER} # phone\n`), [PEER, OTHER])
  })

  it('refuses a file with no ids, which would otherwise read as no list at all', () => {
    assert.throws(() => parseAllowFile('/etc/allow', '# nobody yet\n\n   \n'),
      (err: unknown) => err instanceof ConfigError && err.flag === 'allow-file' && /"\/etc\/allow": holds no peer id/.test(err.message))
  })
})
