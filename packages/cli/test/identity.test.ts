import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { cli, lines, tempDir } from './fixtures.ts'

const PEER_ID = /^12D3KooW[1-9A-HJ-NP-Za-km-z]+$/

describe('identity', () => {
  it('`id` creates a 0600 key and prints the same peer id every time', async t => {
    const key = join(await tempDir(t), 'nested', 'node.key')
    const first = await cli(['id', '--identity', key])
    assert.equal(first.code, 0, first.stderr)
    assert.equal(first.stderr, '')
    assert.equal(lines(first.stdout).length, 1)
    assert.match(first.stdout.trim(), PEER_ID)
    assert.equal((await stat(key)).mode & 0o777, 0o600)

    const second = await cli(['id', '--identity', key])
    assert.equal(second.code, 0)
    assert.equal(second.stdout, first.stdout)
  })

  it('`id` reads PUNCHGATE_IDENTITY, else the default under XDG_STATE_HOME', async t => {
    const dir = await tempDir(t)
    const fromEnv = await cli(['id'], { PUNCHGATE_IDENTITY: join(dir, 'env.key') })
    assert.equal(fromEnv.code, 0, fromEnv.stderr)
    await stat(join(dir, 'env.key'))

    const byDefault = await cli(['id'], { XDG_STATE_HOME: dir })
    assert.equal(byDefault.code, 0, byDefault.stderr)
    await stat(join(dir, 'punchgate', 'identity.key'))
    assert.notEqual(byDefault.stdout, fromEnv.stdout)
  })

  for (const command of [['id'], ['--listen', '/ip4/127.0.0.1/tcp/0']]) {
    const name = command[0] === 'id' ? '`id`' : 'the daemon'
    it(`${name} refuses a corrupt key file with exit 1 and leaves it byte-for-byte`, async t => {
      const key = join(await tempDir(t), 'node.key')
      const garbage = Buffer.from('not a protobuf key \x00\xff\x08\x01')
      await writeFile(key, garbage, { mode: 0o600 })
      const { code, stdout, stderr } = await cli([...command, '--identity', key])
      assert.equal(code, 1)
      assert.equal(stdout, '')
      assert.deepEqual(lines(stderr), [`punchgate: --identity ${JSON.stringify(key)}: not a valid identity key file (left untouched)`])
      assert.deepEqual(await readFile(key), garbage)
    })

    it(`${name} refuses a key file others can read with exit 1 and one line naming chmod 600`, async t => {
      const key = join(await tempDir(t), 'node.key')
      assert.equal((await cli(['id', '--identity', key])).code, 0)
      await chmod(key, 0o644)
      const { code, stdout, stderr } = await cli([...command, '--identity', key])
      assert.equal(code, 1)
      assert.equal(stdout, '')
      assert.deepEqual(lines(stderr), [`punchgate: --identity ${JSON.stringify(key)}: is accessible by group or others (mode 0644); run chmod 600 on it`])
    })

    it(`${name} refuses a directory as the key file with exit 1`, async t => {
      // Inside a private directory: the daemon's control socket goes beside it (DIR.sock).
      const dir = join(await tempDir(t), 'key-dir')
      await mkdir(dir)
      const { code, stderr } = await cli([...command, '--identity', dir])
      assert.equal(code, 1)
      assert.deepEqual(lines(stderr), [`punchgate: --identity ${JSON.stringify(dir)}: cannot read (EISDIR)`])
    })
  }
})
