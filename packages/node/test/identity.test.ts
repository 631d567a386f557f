import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { IdentityError, defaultIdentityPath, loadOrCreateIdentity } from '../src/index.ts'

async function tempDir (t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pg-identity-'))
  t.after(async () => rm(dir, { recursive: true, force: true }))
  return dir
}

describe('identity file', () => {
  it('is created 0600 in a new directory, and loads back to the same peer id', async t => {
    const path = join(await tempDir(t), 'nested', 'identity.key')
    const first = await loadOrCreateIdentity(path)
    assert.equal(first.created, true)
    assert.equal((await stat(path)).mode & 0o777, 0o600)
    const second = await loadOrCreateIdentity(path)
    assert.equal(second.created, false)
    assert.equal(second.peerId, first.peerId)
    assert.match(first.peerId, /^12D3KooW/, 'an Ed25519 peer id')
  })

  it('refuses a corrupt file and never overwrites it', async t => {
    const path = join(await tempDir(t), 'identity.key')
    await writeFile(path, 'not a key', { mode: 0o600 })
    await assert.rejects(loadOrCreateIdentity(path), IdentityError)
    assert.equal(await readFile(path, 'utf8'), 'not a key')
  })

  for (const mode of [0o640, 0o604, 0o620, 0o644]) {
    it(`refuses a key file with mode ${mode.toString(8)}, naming the file and the fix, and leaves it alone`, async t => {
      const path = join(await tempDir(t), 'identity.key')
      const created = await loadOrCreateIdentity(path)
      const bytes = await readFile(path)
      await chmod(path, mode)
      await assert.rejects(loadOrCreateIdentity(path), (err: Error) => {
        assert.equal(err.name, 'IdentityError')
        assert.equal(err.message, `--identity ${JSON.stringify(path)}: is accessible by group or others (mode 0${mode.toString(8)}); run chmod 600 on it`)
        return true
      })
      assert.deepEqual(await readFile(path), bytes)
      assert.equal((await stat(path)).mode & 0o777, mode)
      await chmod(path, 0o600)
      assert.equal((await loadOrCreateIdentity(path)).peerId, created.peerId, 'after chmod 600 it loads again')
    })
  }

  it('accepts a key file with mode 0400', async t => {
    const path = join(await tempDir(t), 'identity.key')
    const created = await loadOrCreateIdentity(path)
    await chmod(path, 0o400)
    assert.equal((await loadOrCreateIdentity(path)).peerId, created.peerId)
  })

  it('refuses an empty file', async t => {
    const path = join(await tempDir(t), 'identity.key')
    await writeFile(path, '', { mode: 0o600 })
    await assert.rejects(loadOrCreateIdentity(path), IdentityError)
  })

  it('defaults under XDG_STATE_HOME', () => {
    assert.equal(defaultIdentityPath({ XDG_STATE_HOME: '/x' }), '/x/punchgate/identity.key')
    assert.equal(defaultIdentityPath({ HOME: '/h' }), join('/h', '.local', 'state', 'punchgate', 'identity.key'))
  })
})
