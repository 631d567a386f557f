import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parse } from '../src/main.ts'
import { daemonSettings, type RunArgs } from '../src/commands/run.ts'
import { assertUsageError, captureIo, cli, tempDir } from './fixtures.ts'

const PEER = '12D3KooWSTrqRiX7VmAocYibHVWuNkmmCdkYj7XidphoYvLui6xD'
const NOBODY = ['nobody may use this service yet', '--allow PEER_ID', '--allow-file PATH', '?allow=PEER_ID', '--allow-any']

/** [what, arguments, environment, what the one stderr line must contain] */
const CASES: Array<[string, string[], NodeJS.ProcessEnv, string[]]> = [
  ['malformed multiaddr in --listen', ['--listen', '/ip4/300.1.1.1/tcp/1'], {}, ['--listen', '"/ip4/300.1.1.1/tcp/1"']],
  ['malformed multiaddr in --bootstrap', ['--bootstrap', 'tcp://example.com:4001'], {}, ['--bootstrap', '"tcp://example.com:4001"']],
  ['--bootstrap without /p2p/', ['--bootstrap', '/ip4/127.0.0.1/tcp/4001'], {}, ['--bootstrap', '"/ip4/127.0.0.1/tcp/4001"', '/p2p/']],
  ['port out of range in --expose', ['--expose', 'ssh=127.0.0.1:65536'], {}, ['--expose', '"ssh=127.0.0.1:65536"', 'out of range']],
  ['port out of range in --tunnel-by-name', ['--tunnel-by-name', 'ssh@127.0.0.1:70000'], {}, ['--tunnel-by-name', '"ssh@127.0.0.1:70000"', 'out of range']],
  ['duplicate service name', ['--expose', 'ssh=127.0.0.1:22', '--expose', 'ssh=127.0.0.1:2222'], {}, ['--expose', '"ssh=127.0.0.1:2222"', 'duplicate']],
  ['--expose that nobody may use', ['--expose', 'ssh=127.0.0.1:22'], {}, ['--expose', '"ssh=127.0.0.1:22"', ...NOBODY]],
  ['--expose-net that nobody may use', ['--expose-net', 'lan=192.168.1.0/24:22'], {}, ['--expose-net', '"lan=192.168.1.0/24:22"', ...NOBODY]],
  ['PUNCHGATE_EXPOSE that nobody may use', [], { PUNCHGATE_EXPOSE: 'ssh=127.0.0.1:22' }, ['--expose', '"ssh=127.0.0.1:22"', ...NOBODY]],
  ['--allow-any beside --allow', ['--allow-any', '--allow', PEER, '--expose', 'ssh=127.0.0.1:22'], {}, ['--allow', PEER, 'cannot be combined with --allow-any']],
  ['?allow=any mixed with a peer id', ['--expose', `ssh=127.0.0.1:22?allow=any,${PEER}`], {}, ['--expose', 'cannot be mixed with peer ids']],
  ['malformed --tunnel peer id', ['--tunnel', 'notapeer:ssh@127.0.0.1:2222'], {}, ['--tunnel', '"notapeer:ssh@127.0.0.1:2222"', 'not a peer id']],
  ['unknown flag', ['--frobnicate', 'yes'], {}, ['Unknown argument', 'frobnicate']],
  ['log level not among the choices', ['--log-level', 'loud'], {}, ['log-level', '"loud"']],
  ['flag without its value', ['--expose'], {}, ['Not enough arguments', 'expose']],
  ['malformed entry in a comma list from the environment', [], { PUNCHGATE_LISTEN: '/ip4/127.0.0.1/tcp/1,nope' }, ['--listen', '"nope"']],
  ['unreadable boolean in the environment', [], { PUNCHGATE_AUTONAT: 'maybe' }, ['PUNCHGATE_AUTONAT', '"maybe"']],
  ['bad flag value while the environment is fine', ['--listen', 'nope'], { PUNCHGATE_LISTEN: '/ip4/127.0.0.1/tcp/1' }, ['--listen', '"nope"']]
]

describe('bad input', () => {
  for (const [what, args, env, expected] of CASES) {
    it(`${what}: one stderr line naming it, exit 2`, async t => assertUsageError(args, expected, await tempDir(t), env))
  }

  it('an --allow-file with no peer id: one stderr line naming the file, exit 2', async t => {
    const dir = await tempDir(t)
    const file = join(dir, 'allowed')
    await writeFile(file, '# the laptop, once it has a key\n\n')
    await assertUsageError(['--allow-file', file, '--expose', 'ssh=127.0.0.1:22'], ['--allow-file', JSON.stringify(file), 'holds no peer id'], dir)
  })

  it('rejects a stray word after the options', async () => {
    const { code, stderr } = await cli(['id', 'extra'])
    assert.equal(code, 2)
    assert.equal(stderr, 'punchgate: Unknown argument: extra (see punchgate --help)\n')
  })

  it('ignores PUNCHGATE_* variables that are not options', async () => {
    const { code } = await cli(['--version'], { PUNCHGATE_DEBUG: '1', PUNCHGATE_SOMETHING: 'x' })
    assert.equal(code, 0)
  })
})

describe('services opened on purpose', () => {
  const settings = async (args: string[], env: NodeJS.ProcessEnv = {}): Promise<ReturnType<typeof daemonSettings>> =>
    daemonSettings((await parse(args, captureIo())).args as RunArgs, env)

  it('--allow-any opens services without a list of their own to every peer', async () => {
    const { config } = await settings(['--allow-any', '--expose', 'ssh=127.0.0.1:22', '--expose-net', 'lan=192.168.1.0/24:22'])
    assert.equal(config.allowAny, true)
  })

  it('PUNCHGATE_ALLOW_ANY=true does the same from the environment', async () => {
    const { config } = await settings([], { PUNCHGATE_ALLOW_ANY: 'true', PUNCHGATE_EXPOSE: 'ssh=127.0.0.1:22' })
    assert.equal(config.allowAny, true)
  })

  it('?allow=any opens one service, beside others with a list', async () => {
    const { config } = await settings(['--allow', PEER, '--expose', 'web=127.0.0.1:80?allow=any', '--expose', 'ssh=127.0.0.1:22'])
    assert.deepEqual(config.expose.map(e => [e.name, e.allow]), [['web', 'any'], ['ssh', undefined]])
    assert.equal(config.allowAny, false)
  })

  it('a --swarm-key mesh needs no list: its members may use the services', async t => {
    const key = join(await tempDir(t), 'swarm.key')
    assert.equal((await cli(['swarm-key', '--output', key])).code, 0)
    const { config } = await settings(['--swarm-key', key, '--expose', 'ssh=127.0.0.1:22'])
    assert.equal(config.expose.length, 1)
    assert.ok(config.swarmKey != null)
  })
})
