import { describe, it, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { execFile, execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import { BIN, binEnv, lines, packageVersion, spawnCli, tempDir } from './fixtures.ts'
import { requestStatus } from '@punchgate/node'
import { DAEMON_ENV, DAEMON_NODE_FLAGS, LATE_V8_FLAGS, SHEBANG_NODE_FLAGS } from '../src/node-flags.ts'

const STACK_FRAME = /^\s+at /m

describe('the punchgate executable', () => {
  it('prints the package version with --version', async () => {
    const { code, stdout, stderr } = await spawnCli(['--version'])
    assert.equal(code, 0, stderr)
    assert.equal(stdout, `${await packageVersion()}\n`)
  })

  it('keeps V8\'s code for the bundle in the user\'s cache directory, not the shared /tmp; NODE_DISABLE_COMPILE_CACHE=1 turns that off', async t => {
    const dir = await tempDir(t)
    const on = await spawnCli(['--version'], { XDG_CACHE_HOME: join(dir, 'on') })
    assert.equal(on.code, 0, on.stderr)
    const cached = await readdir(join(dir, 'on', 'punchgate', 'compile-cache'), { recursive: true })
    assert.ok(cached.length > 0, 'the compile cache was written under $XDG_CACHE_HOME/punchgate')
    const off = await spawnCli(['--version'], { XDG_CACHE_HOME: join(dir, 'off'), NODE_DISABLE_COMPILE_CACHE: '1' })
    assert.equal(off.code, 0, off.stderr)
    await assert.rejects(readdir(join(dir, 'off')), { code: 'ENOENT' })
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
    const daemon = startDaemon(t, [
      '--identity', join(dir, 'node.key'), '--control', join(dir, 'control.sock'),
      '--listen', '/ip4/127.0.0.1/tcp/0', '--metrics', '127.0.0.1:0', '--mdns', '--autonat'
    ])
    const first = await daemon.next(record => record.event === 'metrics.listening' || record.event === 'node.started')
    assert.equal(first.event, 'metrics.listening', `no metrics.listening before node.started; stderr: ${daemon.stderr()}`)
    assert.equal(typeof first.url, 'string', JSON.stringify(first))
    await daemon.next(record => record.event === 'node.started')
    const text = await (await fetch(String(first.url))).text()
    assert.match(text, /^# HELP punchgate_tunnel_connections_total /m)
    assert.match(text, /^libp2p_/m)
    assert.equal(await daemon.stop(), 0, daemon.stderr())
  })

  // patches/ for @libp2p/peer-store, @libp2p/peer-record and string-width: the first
  // localeCompare loads ICU collation data and an Intl.Segmenter its break-iterator data,
  // about 5 MB of an idle daemon's RSS (docs/performance.md). Noise and @libp2p/pnet
  // compile WebAssembly when loaded, about 4 MB: they load only when used (lazy-noise.ts,
  // swarm.ts). The preload reports each.
  it('connects a private daemon to its bootstrap without ICU collation or segmentation, or WebAssembly', { timeout: 60_000 }, async t => {
    const dir = await tempDir(t)
    const preload = join(dir, 'icu-probe.mjs')
    await writeFile(preload, [
      "const report = what => process.stderr.write(`icu-probe: ${what}\\n`)",
      'const localeCompare = String.prototype.localeCompare',
      "String.prototype.localeCompare = function (...args) { report('localeCompare'); return localeCompare.apply(this, args) }",
      'const Segmenter = Intl.Segmenter',
      "Intl.Segmenter = class extends Segmenter { constructor (...args) { super(...args); report('Intl.Segmenter') } }",
      'const Module = WebAssembly.Module',
      "WebAssembly.Module = class extends Module { constructor (...args) { super(...args); report('WebAssembly.Module') } }",
      ''
    ].join('\n'))
    const env = { NODE_OPTIONS: `--import ${preload}` }
    const bootstrap = startDaemon(t, ['--identity', join(dir, 'boot.key'), '--control', join(dir, 'boot.sock'), '--listen', '/ip4/127.0.0.1/tcp/0'], env)
    const started = await bootstrap.next(record => record.event === 'node.started')
    const addr = (started.addrs as string[]).find(a => a.includes('/tcp/'))
    assert.ok(addr != null, JSON.stringify(started))
    const peer = startDaemon(t, ['--identity', join(dir, 'peer.key'), '--control', join(dir, 'peer.sock'), '--listen', '/ip4/127.0.0.1/tcp/0', '--bootstrap', addr], env)
    // A relay reservation follows identify on both sides, which stores the peer's protocols.
    await peer.next(record => record.event === 'relay.reserved')
    assert.equal(await peer.stop(), 0, peer.stderr())
    assert.equal(await bootstrap.stop(), 0, bootstrap.stderr())
    for (const daemon of [bootstrap, peer]) assert.doesNotMatch(daemon.stderr(), /icu-probe/)
    // The probe itself works: the CLI's own help output needs a Segmenter, and a daemon
    // with a swarm key loads @libp2p/pnet (from its own chunk of the bundle).
    const help = await spawnCli(['--help'], env)
    assert.match(help.stderr, /icu-probe: Intl\.Segmenter/)
    const key = join(dir, 'swarm.key')
    assert.equal((await spawnCli(['swarm-key', '--output', key])).code, 0)
    const keyed = startDaemon(t, ['--identity', join(dir, 'keyed.key'), '--control', join(dir, 'keyed.sock'), '--listen', '/ip4/127.0.0.1/tcp/0', '--swarm-key', key], env)
    await keyed.next(record => record.event === 'node.started')
    assert.equal(await keyed.stop(), 0, keyed.stderr())
    assert.match(keyed.stderr(), /icu-probe: WebAssembly\.Module/)
  })

  it('keeps running, without a stack trace, when the reader of its JSON log goes away (EPIPE)', { timeout: 30_000 }, async t => {
    const dir = await tempDir(t)
    const control = join(dir, 'control.sock')
    const daemon = spawn(BIN, ['--identity', join(dir, 'node.key'), '--control', control, '--listen', '/ip4/127.0.0.1/tcp/0'],
      { env: binEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
    t.after(() => daemon.kill('SIGKILL'))
    let stderr = ''
    daemon.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    const records = createInterface({ input: daemon.stdout })
    for await (const line of records) if (line.includes('"event":"control.listening"')) break
    // `punchgate | head -1`: the reader closes the pipe; the next records meet EPIPE.
    records.close()
    daemon.stdout.destroy()
    const status = await requestStatus(control)
    assert.match(status.status.peerId, /^12D3/, 'the daemon still answers on its control socket')
    const exited = once(daemon, 'exit') as Promise<[number | null]>
    daemon.kill('SIGTERM')
    assert.equal((await exited)[0], 0, stderr)
    assert.doesNotMatch(stderr, STACK_FRAME)
  })

  it('starts Node with the daemon environment and flags when run as a program', async () => {
    const text = await readFile(BIN, 'utf8')
    const [shebang] = text.split('\n', 1)
    const env = Object.entries(DAEMON_ENV).map(([name, value]) => `${name}=${value}`)
    assert.equal(shebang, `#!/usr/bin/env -S ${[...env, 'node', ...SHEBANG_NODE_FLAGS].join(' ')}`)
    // The rest of the daemon's flags are set by the script itself, after the version check.
    assert.deepEqual([...SHEBANG_NODE_FLAGS, ...LATE_V8_FLAGS.filter(f => DAEMON_NODE_FLAGS.includes(f))].sort(), [...DAEMON_NODE_FLAGS].sort())
    assert.ok(text.includes(`for (const flag of ${JSON.stringify(LATE_V8_FLAGS).replaceAll('"', "'").replaceAll(',', ', ')}) setFlagsFromString(flag)`), 'the bin sets LATE_V8_FLAGS')
  })

  it('says in one line that it needs Node 22 under an older Node, exit 1', { skip: oldNode() == null ? 'no Node older than 22 on PATH (CI has the system Node 20)' : false }, async () => {
    const old = oldNode() ?? ''
    const { code, stdout, stderr } = await new Promise<{ code: number | string | null | undefined, stdout: string, stderr: string }>(resolve => {
      execFile(BIN, ['--version'], { env: { PATH: `${join(old, '..')}:/usr/bin:/bin` } }, (err, stdout, stderr) => resolve({ code: err?.code ?? 0, stdout, stderr }))
    })
    const version = execFileSync(old, ['--version'], { encoding: 'utf8' }).trim()
    assert.equal(code, 1, stderr)
    assert.equal(stdout, '')
    assert.equal(stderr, `punchgate needs Node 22 or newer; this is ${version}\n`)
  })
})

/**
 * A Node older than 22 to run the bin under: PUNCHGATE_TEST_OLD_NODE, else the system's
 * /usr/bin/node or /usr/local/bin/node when it is older (CI's machine has Node 20 there).
 */
function oldNode (): string | undefined {
  const candidates = [process.env.PUNCHGATE_TEST_OLD_NODE, '/usr/local/bin/node', '/usr/bin/node'].filter((p): p is string => p != null && p !== '')
  for (const path of candidates) {
    try {
      const major = Number(execFileSync(path, ['--version'], { encoding: 'utf8' }).trim().slice(1).split('.')[0])
      if (major < 22) return path
    } catch {}
  }
  return undefined
}

interface Daemon {
  /** Resolves with the next JSON log record from stdout that satisfies `match`. */
  next: (match: (record: Record<string, unknown>) => boolean) => Promise<Record<string, unknown>>
  stderr: () => string
  /** SIGTERM, then the exit code. */
  stop: () => Promise<number | null>
}

/** The bundled daemon as users run it: the bin script, with Node's directory on PATH. */
function startDaemon (t: TestContext, args: string[], env: NodeJS.ProcessEnv = {}): Daemon {
  const daemon = spawn(BIN, args, { env: binEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
  t.after(() => daemon.kill('SIGKILL'))
  let stderr = ''
  daemon.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const records = createInterface({ input: daemon.stdout })[Symbol.asyncIterator]()
  return {
    next: async match => {
      for (let line = await records.next(); line.done !== true; line = await records.next()) {
        const record = JSON.parse(line.value) as Record<string, unknown>
        if (match(record)) return record
      }
      throw new Error(`the daemon's output ended first; stderr: ${stderr}`)
    },
    stderr: () => stderr,
    stop: async () => {
      const exited = once(daemon, 'exit') as Promise<[number | null]>
      daemon.kill('SIGTERM')
      return (await exited)[0]
    }
  }
}
