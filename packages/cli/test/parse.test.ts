import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { DEFAULT_LISTEN } from '@punchgate/node'
import { parse } from '../src/main.ts'
import { daemonSettings, type RunArgs } from '../src/commands/run.ts'
import { captureIo } from './fixtures.ts'

const PEER = '12D3KooWSTrqRiX7VmAocYibHVWuNkmmCdkYj7XidphoYvLui6xD'
const BOOT = `/ip4/127.0.0.1/tcp/4001/p2p/${PEER}`

async function parseArgs (args: string[]): Promise<RunArgs> {
  return (await parse(args, captureIo())).args as RunArgs
}

/** Parses like the CLI does, then applies `env` and the defaults. */
async function settings (args: string[], env: NodeJS.ProcessEnv = {}): Promise<ReturnType<typeof daemonSettings>> {
  return daemonSettings(await parseArgs(args), env)
}

describe('argument parsing', () => {
  it('collects each repeatable flag into an array, in order', async () => {
    const args = await parseArgs([
      '--listen', '/ip4/127.0.0.1/tcp/1', '--listen', '/ip4/127.0.0.1/tcp/2',
      '--bootstrap', BOOT,
      '--expose', 'a=127.0.0.1:1', '--expose', 'b=127.0.0.1:2',
      '--tunnel', `${PEER}:a@127.0.0.1:3`,
      '--tunnel-by-name', 'b@127.0.0.1:4', '--tunnel-by-name', 'c@127.0.0.1:5'
    ])
    assert.deepEqual(args.listen, ['/ip4/127.0.0.1/tcp/1', '/ip4/127.0.0.1/tcp/2'])
    assert.deepEqual(args.bootstrap, [BOOT])
    assert.deepEqual(args.expose, ['a=127.0.0.1:1', 'b=127.0.0.1:2'])
    assert.deepEqual(args.tunnel, [`${PEER}:a@127.0.0.1:3`])
    assert.deepEqual(args['tunnel-by-name'], ['b@127.0.0.1:4', 'c@127.0.0.1:5'])
  })

  it('lets the last of a repeated single-value flag win', async () => {
    const args = await parseArgs(['--identity', 'a.key', '--identity', 'b.key', '--log-level', 'warn', '--log-level', 'debug'])
    assert.equal(args.identity, 'b.key')
    assert.equal(args['log-level'], 'debug')
  })

  it('does not let a repeatable flag swallow the next word', async () => {
    await assert.rejects(parseArgs(['--listen', '/ip4/127.0.0.1/tcp/1', '/ip4/127.0.0.1/tcp/2']),
      { name: 'UsageError', message: 'Unknown argument: /ip4/127.0.0.1/tcp/2' })
  })

  it('maps the flags onto the node config', async () => {
    const { config, identityPath, logLevel } = await settings([
      '--identity', '/keys/node.key', '--listen', '/ip4/127.0.0.1/tcp/0', '--bootstrap', BOOT,
      '--expose', 'ssh=127.0.0.1:22', '--allow', PEER, '--tunnel', `${PEER}:ssh@127.0.0.1:2222`, '--tunnel-by-name', 'web@127.0.0.1:8080',
      '--log-level', 'warn', '--mdns', '--autonat'
    ])
    assert.equal(identityPath, '/keys/node.key')
    assert.equal(logLevel, 'warn')
    assert.deepEqual(config.listen, ['/ip4/127.0.0.1/tcp/0'])
    assert.deepEqual(config.bootstrap, [BOOT])
    assert.deepEqual(config.expose, [{ name: 'ssh', target: { host: '127.0.0.1', port: 22 } }])
    assert.deepEqual(config.tunnels.map(t => [t.peer, t.service, t.bind.port]), [[PEER, 'ssh', 2222], [undefined, 'web', 8080]])
    assert.equal(config.mdns, true)
    assert.equal(config.autonat, true)
  })

  it('falls back to the defaults', async () => {
    const { config, identityPath, logLevel } = await settings([], { XDG_STATE_HOME: '/state' })
    assert.equal(identityPath, '/state/punchgate/identity.key')
    assert.equal(logLevel, 'info')
    assert.deepEqual(config.listen, DEFAULT_LISTEN)
    assert.deepEqual([config.bootstrap, config.expose, config.tunnels], [[], [], []])
    assert.equal(config.mdns, false)
    assert.equal(config.autonat, false)
    assert.equal(config.portMapping, true)
  })

  it('turns port mapping off with --no-port-mapping or PUNCHGATE_PORT_MAPPING=off', async () => {
    assert.equal((await settings(['--no-port-mapping'])).config.portMapping, false)
    assert.equal((await settings([], { PUNCHGATE_PORT_MAPPING: 'off' })).config.portMapping, false)
    assert.equal((await settings(['--port-mapping'], { PUNCHGATE_PORT_MAPPING: 'off' })).config.portMapping, true)
  })
})

describe('environment', () => {
  const ENV = {
    PUNCHGATE_IDENTITY: '/env/node.key',
    PUNCHGATE_LISTEN: '/ip4/127.0.0.1/tcp/1, /ip4/127.0.0.1/tcp/2,',
    PUNCHGATE_BOOTSTRAP: BOOT,
    PUNCHGATE_EXPOSE: 'a=127.0.0.1:1,b=127.0.0.1:2',
    PUNCHGATE_ALLOW_ANY: 'true',
    PUNCHGATE_TUNNEL: `${PEER}:a@127.0.0.1:3`,
    PUNCHGATE_TUNNEL_BY_NAME: 'b@127.0.0.1:4,c@127.0.0.1:5',
    PUNCHGATE_LOG_LEVEL: 'error',
    PUNCHGATE_MDNS: 'yes',
    PUNCHGATE_AUTONAT: '1'
  }

  it('supplies every option the command line left out, splitting comma lists', async () => {
    const { config, identityPath, logLevel } = await settings([], ENV)
    assert.equal(identityPath, '/env/node.key')
    assert.equal(logLevel, 'error')
    assert.deepEqual(config.listen, ['/ip4/127.0.0.1/tcp/1', '/ip4/127.0.0.1/tcp/2'])
    assert.deepEqual(config.bootstrap, [BOOT])
    assert.deepEqual(config.expose.map(e => e.name), ['a', 'b'])
    assert.deepEqual(config.tunnels.map(t => t.id), [`${PEER}:a@127.0.0.1:3`, 'b@127.0.0.1:4', 'c@127.0.0.1:5'])
    assert.equal(config.mdns, true)
    assert.equal(config.autonat, true)
  })

  it('is overridden by flags, option by option', async () => {
    const { config, identityPath, logLevel } = await settings([
      '--identity', '/flag/node.key', '--listen', '/ip4/127.0.0.1/tcp/9', '--expose', 'z=127.0.0.1:9', '--allow-any',
      '--tunnel-by-name', 'y@127.0.0.1:9', '--log-level', 'debug', '--no-mdns'
    ], ENV)
    assert.equal(identityPath, '/flag/node.key')
    assert.equal(logLevel, 'debug')
    assert.deepEqual(config.listen, ['/ip4/127.0.0.1/tcp/9'])
    assert.deepEqual(config.expose.map(e => e.name), ['z'])
    // --tunnel was not given, so PUNCHGATE_TUNNEL still applies; --tunnel-by-name replaced its variable.
    assert.deepEqual(config.tunnels.map(t => t.id), [`${PEER}:a@127.0.0.1:3`, 'y@127.0.0.1:9'])
    assert.equal(config.mdns, false)
    assert.equal(config.autonat, true)
  })

  it('treats an empty variable as unset', async () => {
    const { config, logLevel } = await settings([], { PUNCHGATE_LISTEN: '', PUNCHGATE_LOG_LEVEL: ' ', PUNCHGATE_MDNS: '' })
    assert.deepEqual(config.listen, DEFAULT_LISTEN)
    assert.equal(logLevel, 'info')
    assert.equal(config.mdns, false)
  })

  it('reads booleans as 1/0, true/false, yes/no, on/off', async () => {
    for (const [text, value] of [['TRUE', true], ['on', true], ['0', false], ['no', false], ['Off', false]] as const) {
      assert.equal((await settings([], { PUNCHGATE_AUTONAT: text })).config.autonat, value, text)
    }
  })

  it('rejects a value it cannot read, naming the variable', async () => {
    assert.throws(() => daemonSettings({}, { PUNCHGATE_MDNS: 'maybe' }),
      { name: 'UsageError', message: 'PUNCHGATE_MDNS "maybe": expected true or false' })
    assert.throws(() => daemonSettings({}, { PUNCHGATE_LOG_LEVEL: 'loud' }),
      { name: 'UsageError', message: /^PUNCHGATE_LOG_LEVEL "loud": expected one of trace, debug, info/ })
  })
})
