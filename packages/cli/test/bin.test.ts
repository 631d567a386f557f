import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { BIN, lines, packageVersion, spawnCli, tempDir } from './fixtures.ts'
import { DAEMON_ENV, DAEMON_NODE_FLAGS } from '../src/node-flags.ts'

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

  it('exits 1 with one line naming npm run build when the bundle was never built', async t => {
    const bin = join(await tempDir(t), 'bin', 'punchgate.js')
    await mkdir(join(bin, '..'))
    await copyFile(BIN, bin)
    const { code, stderr } = await new Promise<{ code: number | string | null | undefined, stderr: string }>(resolve => {
      execFile(process.execPath, [bin, '--version'], (err, _stdout, stderr) => resolve({ code: err?.code, stderr }))
    })
    assert.equal(code, 1)
    assert.equal(lines(stderr).length, 1, stderr)
    assert.match(stderr, /dist\/punchgate\.js is missing: run `npm run build`/)
  })

  it('starts Node with the daemon environment and flags when run as a program', async () => {
    const [shebang] = (await readFile(BIN, 'utf8')).split('\n', 1)
    const env = Object.entries(DAEMON_ENV).map(([name, value]) => `${name}=${value}`)
    assert.equal(shebang, `#!/usr/bin/env -S ${[...env, 'node', ...DAEMON_NODE_FLAGS].join(' ')}`)
  })
})
