import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { BIN, lines, packageVersion, spawnCli, tempDir } from './fixtures.ts'
import { DAEMON_NODE_FLAGS } from '../src/node-flags.ts'

const STACK_FRAME = /^\s+at /m

describe('the punchgate executable', () => {
  it('prints the package version with --version', async () => {
    const { code, stdout, stderr } = await spawnCli(['--version'])
    assert.equal(code, 0, stderr)
    assert.equal(stdout, `${await packageVersion()}\n`)
  })

  it('exits 2 on a bad flag value, with one stderr line and no stack trace', async t => {
    const dir = await tempDir(t)
    const { code, stdout, stderr } = await spawnCli(['--expose', 'ssh=127.0.0.1:99999', '--identity', dir])
    assert.equal(code, 2)
    assert.equal(stdout, '')
    assert.equal(lines(stderr).length, 1, stderr)
    assert.doesNotMatch(stderr, STACK_FRAME)
  })

  it('exits 1 on an unreadable identity, with one stderr line and no stack trace', async t => {
    const key = join(await tempDir(t), 'node.key')
    await writeFile(key, 'garbage')
    const { code, stdout, stderr } = await spawnCli(['id', '--identity', key])
    assert.equal(code, 1)
    assert.equal(stdout, '')
    assert.equal(lines(stderr).length, 1, stderr)
    assert.doesNotMatch(stderr, STACK_FRAME)
  })

  it('starts Node with the daemon flags when run as a program', async () => {
    const [shebang] = (await readFile(BIN, 'utf8')).split('\n', 1)
    assert.equal(shebang, `#!/usr/bin/env -S node ${DAEMON_NODE_FLAGS.join(' ')}`)
  })
})
