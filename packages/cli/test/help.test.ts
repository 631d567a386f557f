import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { cli, packageVersion } from './fixtures.ts'

describe('help and version', () => {
  it('--version prints the package version on stdout', async () => {
    assert.deepEqual(await cli(['--version']), { code: 0, stdout: `${await packageVersion()}\n`, stderr: '' })
  })

  it('--help lists the commands, the flags and the environment rule', async () => {
    const { code, stdout, stderr } = await cli(['--help'])
    assert.equal(code, 0)
    assert.equal(stderr, '')
    for (const word of ['punchgate id', '--identity', '--listen', '--bootstrap', '--expose', '--tunnel ', '--tunnel-by-name',
      '--log-level', '--mdns', '--autonat', '--allow-any', 'PUNCHGATE_<OPTION>']) {
      assert.ok(stdout.includes(word), word)
    }
  })
})
