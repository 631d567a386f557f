import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
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
