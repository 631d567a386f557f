import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { assertUsageError, cli, tempDir } from './fixtures.ts'

/** [what, arguments, environment, what the one stderr line must contain] */
const CASES: Array<[string, string[], NodeJS.ProcessEnv, string[]]> = [
  ['malformed multiaddr in --listen', ['--listen', '/ip4/300.1.1.1/tcp/1'], {}, ['--listen', '"/ip4/300.1.1.1/tcp/1"']],
  ['malformed multiaddr in --bootstrap', ['--bootstrap', 'tcp://example.com:4001'], {}, ['--bootstrap', '"tcp://example.com:4001"']],
  ['--bootstrap without /p2p/', ['--bootstrap', '/ip4/127.0.0.1/tcp/4001'], {}, ['--bootstrap', '"/ip4/127.0.0.1/tcp/4001"', '/p2p/']],
  ['port out of range in --expose', ['--expose', 'ssh=127.0.0.1:65536'], {}, ['--expose', '"ssh=127.0.0.1:65536"', 'out of range']],
  ['port out of range in --tunnel-by-name', ['--tunnel-by-name', 'ssh@127.0.0.1:70000'], {}, ['--tunnel-by-name', '"ssh@127.0.0.1:70000"', 'out of range']],
  ['duplicate service name', ['--expose', 'ssh=127.0.0.1:22', '--expose', 'ssh=127.0.0.1:2222'], {}, ['--expose', '"ssh=127.0.0.1:2222"', 'duplicate']],
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
