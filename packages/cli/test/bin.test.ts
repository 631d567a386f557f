import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises'
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
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

  it('runs the daemon from the bundle with the modules it loads on demand: --metrics, --mdns, --autonat', { timeout: 30_000 }, async t => {
    const dir = await tempDir(t)
    const path = `${join(process.execPath, '..')}:${process.env.PATH ?? ''}`
    const daemon = spawn(BIN, [
      '--identity', join(dir, 'node.key'), '--control', join(dir, 'control.sock'),
      '--listen', '/ip4/127.0.0.1/tcp/0', '--metrics', '127.0.0.1:0', '--mdns', '--autonat'
    ], { env: { PATH: path }, stdio: ['ignore', 'pipe', 'pipe'] })
    t.after(() => daemon.kill('SIGKILL'))
    let stderr = ''
    daemon.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    let url: string | undefined
    for await (const line of createInterface({ input: daemon.stdout })) {
      const record = JSON.parse(line) as { event: string, url?: string }
      if (record.event === 'metrics.listening') url = record.url
      if (record.event === 'node.started') break
    }
    assert.ok(url != null, `no metrics.listening before node.started; stderr: ${stderr}`)
    const text = await (await fetch(url)).text()
    assert.match(text, /^# HELP punchgate_tunnel_connections_total /m)
    assert.match(text, /^libp2p_/m)
    daemon.kill('SIGTERM')
    const [code] = await once(daemon, 'exit') as [number | null]
    assert.equal(code, 0, stderr)
  })

  it('starts Node with the daemon environment and flags when run as a program', async () => {
    const [shebang] = (await readFile(BIN, 'utf8')).split('\n', 1)
    const env = Object.entries(DAEMON_ENV).map(([name, value]) => `${name}=${value}`)
    assert.equal(shebang, `#!/usr/bin/env -S ${[...env, 'node', ...DAEMON_NODE_FLAGS].join(' ')}`)
  })
})
