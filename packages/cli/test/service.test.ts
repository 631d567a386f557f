/**
 * Service mode: `punchgate up`, `down` and `logs` in a temp HOME, with fake systemctl,
 * journalctl, launchctl and tail on PATH that record how they were called. Both
 * platforms run here: the platform is injected.
 */
import { describe, it, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { createInterface } from 'node:readline'
import { runOptions } from '../src/commands/run.ts'
import { main } from '../src/main.ts'
import { BIN, captureIo, cli, lines, tempDir, type Result } from './fixtures.ts'

const BOOT = '/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWSTrqRiX7VmAocYibHVWuNkmmCdkYj7XidphoYvLui6xD'
const FLAGS = ['--bootstrap', BOOT, '--expose', 'echo=127.0.0.1:7000', '--allow-any', '--tunnel-by-name', 'db@127.0.0.1:5432',
  '--tunnel-by-name', 'web@127.0.0.1:8080', '--mdns', '--log-level', 'debug']
const REPO = new URL('../../../', import.meta.url).pathname
const GOLDEN = new URL('golden/', import.meta.url).pathname
const TOOLS = ['systemctl', 'journalctl', 'launchctl', 'tail']
const UID = process.getuid?.() ?? 0

/** A temp HOME and a PATH of recording fakes; `scripts` replaces a fake's behaviour. */
interface Sandbox {
  home: string
  env: NodeJS.ProcessEnv
  envFile: string
  calls: () => Promise<string[]>
  run: (platform: NodeJS.Platform, args: string[]) => Promise<Result>
}

async function sandbox (t: TestContext, scripts: Record<string, string> = {}, tools = TOOLS): Promise<Sandbox> {
  const dir = await tempDir(t)
  const home = join(dir, 'home')
  const bin = join(dir, 'bin')
  const log = join(dir, 'calls')
  await mkdir(bin)
  for (const tool of tools) {
    const behaviour = scripts[tool] ?? ''
    await writeFile(join(bin, tool), `#!/bin/sh\nprintf '%s\\n' "${tool} $*" >> "$FAKE_CALLS"\n${behaviour}\n`)
    await chmod(join(bin, tool), 0o755)
  }
  const env = { HOME: home, PATH: bin, FAKE_CALLS: log }
  return {
    home,
    env,
    envFile: join(home, '.config', 'punchgate', 'punchgate.env'),
    calls: async () => lines(await readFile(log, 'utf8').catch(() => '')),
    run: async (platform, args) => {
      const io = { ...captureIo(env), platform }
      const code = await main([process.execPath, BIN, ...args], io)
      return { code, stdout: io.stdout.text(), stderr: io.stderr.text() }
    }
  }
}

/** The deploy/ template with the placeholders filled in the way `up` fills them. */
async function template (path: string, home: string, platform: 'linux' | 'darwin'): Promise<string> {
  const text = await readFile(join(REPO, 'deploy', path), 'utf8')
  const logFile = platform === 'darwin' ? join(home, 'Library', 'Logs', 'punchgate.log') : ''
  return text.replaceAll('@NODE@', process.execPath)
    .replaceAll('@PUNCHGATE@', join(REPO, 'packages', 'cli', 'bin', 'punchgate.js'))
    .replaceAll('@ENV_FILE@', join(home, '.config', 'punchgate', 'punchgate.env'))
    .replaceAll('@LOG_FILE@', logFile)
}

async function golden (name: string, home: string): Promise<string> {
  return (await readFile(join(GOLDEN, name), 'utf8')).replaceAll('{HOME}', home)
}

async function exists (path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false)
}

async function peerIdOf (identity: string): Promise<string> {
  const { code, stdout } = await cli(['id', '--identity', identity])
  assert.equal(code, 0)
  return stdout.trim()
}

describe('punchgate up', () => {
  it('on Linux writes the settings and a systemd user unit, then reloads, enables and starts it', async t => {
    const box = await sandbox(t)
    const { code, stdout, stderr } = await box.run('linux', ['up', ...FLAGS])
    assert.equal(code, 0, stderr)
    assert.equal(await readFile(box.envFile, 'utf8'), await golden('linux.env', box.home))
    const unit = join(box.home, '.config', 'systemd', 'user', 'punchgate.service')
    assert.equal(await readFile(unit, 'utf8'), await template('systemd/punchgate.service', box.home, 'linux'))
    assert.deepEqual(await box.calls(), [
      'systemctl --user show-environment',
      'systemctl --user daemon-reload',
      'systemctl --user enable punchgate.service',
      'systemctl --user restart punchgate.service'
    ])
    const peerId = await peerIdOf(join(box.home, '.local', 'state', 'punchgate', 'identity.key'))
    assert.match(stdout, new RegExp(`peer id +${peerId}\n`))
    assert.equal((await stat(box.envFile)).mode & 0o777, 0o600)
  })

  it('on macOS writes the settings and a LaunchAgent, then boots it in and kicks it off', async t => {
    const box = await sandbox(t)
    const { code, stdout, stderr } = await box.run('darwin', ['up', ...FLAGS])
    assert.equal(code, 0, stderr)
    assert.equal(await readFile(box.envFile, 'utf8'), await golden('darwin.env', box.home))
    const plist = join(box.home, 'Library', 'LaunchAgents', 'punchgate.plist')
    assert.equal(await readFile(plist, 'utf8'), await template('launchd/punchgate.plist', box.home, 'darwin'))
    assert.deepEqual(await box.calls(), [
      `launchctl bootout gui/${UID}/punchgate`,
      `launchctl bootstrap gui/${UID} ${plist}`,
      `launchctl kickstart gui/${UID}/punchgate`
    ])
    assert.ok(await exists(join(box.home, 'Library', 'Logs')), 'the log directory exists for launchd to write in')
    const peerId = await peerIdOf(join(box.home, 'Library', 'Application Support', 'punchgate', 'identity.key'))
    assert.match(stdout, new RegExp(`peer id +${peerId}\n`))
  })

  it("writes a LaunchAgent whose command line runs the daemon with the stored settings", async t => {
    const box = await sandbox(t)
    const { code, stderr } = await box.run('darwin', ['up', '--listen', '/ip4/127.0.0.1/tcp/0', '--expose', 'echo=127.0.0.1:7000', '--allow-any'])
    assert.equal(code, 0, stderr)
    const plist = await readFile(join(box.home, 'Library', 'LaunchAgents', 'punchgate.plist'), 'utf8')
    const array = /<key>ProgramArguments<\/key>\s*<array>([\s\S]*?)<\/array>/.exec(plist)?.[1] ?? ''
    const [command, ...args] = [...array.matchAll(/<string>(.*?)<\/string>/g)].map(match => match[1] as string)
    // As launchd runs it: no PUNCHGATE_* in the environment, only what Node reads from the file.
    const daemon = spawn(command as string, args, { env: {}, stdio: ['ignore', 'pipe', 'pipe'] })
    t.after(() => daemon.kill('SIGKILL'))
    let stderrText = ''
    daemon.stderr.on('data', (chunk: Buffer) => { stderrText += chunk.toString() })
    const started = await firstEvent(daemon.stdout, 'node.started')
    assert.equal(started.peerId, await peerIdOf(join(box.home, 'Library', 'Application Support', 'punchgate', 'identity.key')), stderrText)
    assert.ok((started.addrs as string[]).some(addr => addr.startsWith('/ip4/127.0.0.1/tcp/')), JSON.stringify(started.addrs))
    const exited = new Promise(resolve => daemon.on('exit', resolve))
    daemon.kill('SIGTERM')
    assert.equal(await exited, 0, stderrText)
  })

  it('keeps the stored settings on a re-run; flags given rewrite only their own lines', async t => {
    const box = await sandbox(t)
    assert.equal((await box.run('linux', ['up', ...FLAGS])).code, 0)
    const edited = `${await readFile(box.envFile, 'utf8')}# added by hand\nPUNCHGATE_AUTONAT=true\n`
    await writeFile(box.envFile, edited)

    assert.equal((await box.run('linux', ['up'])).code, 0)
    assert.equal(await readFile(box.envFile, 'utf8'), edited)

    assert.equal((await box.run('linux', ['up', '--expose', 'ssh=127.0.0.1:22', '--expose', 'echo=127.0.0.1:7000'])).code, 0)
    const before = edited.split('\n')
    const after = (await readFile(box.envFile, 'utf8')).split('\n')
    assert.equal(after.length, before.length)
    const changed = after.flatMap((line, i) => line === before[i] ? [] : [line])
    assert.deepEqual(changed, ['PUNCHGATE_EXPOSE=ssh=127.0.0.1:22,echo=127.0.0.1:7000'])

    assert.equal((await box.run('linux', ['up', '--bootstrap', ''])).code, 0)
    const removed = (await readFile(box.envFile, 'utf8')).split('\n')
    assert.deepEqual(after.filter(line => !removed.includes(line)), [`PUNCHGATE_BOOTSTRAP=${BOOT}`])
  })

  it('accepts the daemon flags before `up` as well as after it', async t => {
    const before = await sandbox(t)
    const after = await sandbox(t)
    assert.equal((await before.run('linux', ['--mdns', '--expose', 'echo=127.0.0.1:7000', '--allow-any', '--no-autonat', 'up'])).code, 0)
    assert.equal((await after.run('linux', ['up', '--mdns', '--expose', 'echo=127.0.0.1:7000', '--allow-any', '--no-autonat'])).code, 0)
    const settings = async (box: Sandbox): Promise<string[]> =>
      lines((await readFile(box.envFile, 'utf8')).replaceAll(box.home, '~')).filter(line => !line.startsWith('#'))
    assert.deepEqual(await settings(before), [
      'PUNCHGATE_IDENTITY=~/.local/state/punchgate/identity.key',
      'PUNCHGATE_EXPOSE=echo=127.0.0.1:7000',
      'PUNCHGATE_ALLOW_ANY=true',
      'PUNCHGATE_MDNS=true',
      'PUNCHGATE_AUTONAT=false'
    ])
    assert.deepEqual(await settings(after), await settings(before))
  })

  it('puts the settings and the unit under XDG_CONFIG_HOME when it is set', async t => {
    const box = await sandbox(t)
    const config = join(box.home, 'xdg')
    const io = { ...captureIo({ ...box.env, XDG_CONFIG_HOME: config }), platform: 'linux' as const }
    assert.equal(await main([process.execPath, BIN, 'up'], io), 0, io.stderr.text())
    assert.ok(await exists(join(config, 'punchgate', 'punchgate.env')))
    assert.ok(await exists(join(config, 'systemd', 'user', 'punchgate.service')))
    assert.equal(await exists(box.envFile), false)
  })

  it('stores a relative --identity as an absolute path', async t => {
    const box = await sandbox(t)
    const key = join(await tempDir(t), 'node.key')
    assert.equal((await box.run('linux', ['up', '--identity', relative(process.cwd(), key)])).code, 0)
    const text = await readFile(box.envFile, 'utf8')
    assert.ok(text.includes(`\nPUNCHGATE_IDENTITY=${key}\n`), text)
  })

  it('rejects a bad flag value with exit 2 before writing or starting anything', async t => {
    const box = await sandbox(t)
    const { code, stderr } = await box.run('linux', ['up', '--expose', 'echo=127.0.0.1:99999'])
    assert.equal(code, 2)
    assert.equal(lines(stderr).length, 1, stderr)
    assert.equal(await exists(box.home), false, 'nothing written under HOME')
    assert.deepEqual(await box.calls(), [])
  })

  it('says in one line when systemd --user is unreachable, and installs no unit', async t => {
    const box = await sandbox(t, { systemctl: 'echo "Failed to connect to bus: No medium found" >&2; exit 1' })
    const { code, stdout, stderr } = await box.run('linux', ['up', '--expose', 'echo=127.0.0.1:7000', '--allow-any'])
    assert.equal(code, 1)
    assert.equal(stdout, '')
    assert.equal(lines(stderr).length, 1, stderr)
    assert.match(stderr, /^punchgate: systemd --user is not available \(Failed to connect to bus: No medium found\)/)
    assert.ok(stderr.includes(`set -a; . ${box.envFile}; punchgate`), stderr)
    assert.equal(await exists(join(box.home, '.config', 'systemd')), false)
    assert.deepEqual(await box.calls(), ['systemctl --user show-environment'])
    assert.ok((await readFile(box.envFile, 'utf8')).includes('PUNCHGATE_EXPOSE=echo=127.0.0.1:7000\n'))
  })

  it('says in one line when there is no systemctl at all', async t => {
    const box = await sandbox(t, {}, [])
    const { code, stderr } = await box.run('linux', ['up'])
    assert.equal(code, 1)
    assert.equal(lines(stderr).length, 1, stderr)
    assert.match(stderr, /^punchgate: systemd --user is not available \(systemctl not found\)/)
  })

  it('reports a failing systemctl request with its message', async t => {
    const box = await sandbox(t, { systemctl: '[ "$2" = restart ] && { echo "Job for punchgate.service failed." >&2; exit 1; }; exit 0' })
    const { code, stderr } = await box.run('linux', ['up'])
    assert.equal(code, 1)
    assert.equal(stderr, 'punchgate: systemctl --user restart punchgate.service failed: Job for punchgate.service failed.\n')
  })

  it('refuses a platform without a supported service manager', async t => {
    const box = await sandbox(t)
    const { code, stderr } = await box.run('win32', ['up'])
    assert.equal(code, 1)
    assert.equal(lines(stderr).length, 1, stderr)
    assert.match(stderr, /not win32/)
  })

  it('lists every daemon option in its help', async () => {
    const { code, stdout } = await cli(['up', '--help'])
    assert.equal(code, 0)
    for (const option of Object.keys(runOptions)) assert.ok(stdout.includes(`--${option} `), option)
  })
})

describe('punchgate down', () => {
  it('on Linux stops, disables and removes the unit, and keeps the settings and the identity', async t => {
    const box = await sandbox(t)
    assert.equal((await box.run('linux', ['up'])).code, 0)
    const identity = join(box.home, '.local', 'state', 'punchgate', 'identity.key')
    const settings = await readFile(box.envFile, 'utf8')
    const { code, stdout, stderr } = await box.run('linux', ['down'])
    assert.equal(code, 0, stderr)
    assert.equal(stdout, `punchgate: service stopped and removed; kept ${box.envFile} and ${identity}\n`)
    assert.deepEqual((await box.calls()).slice(4), ['systemctl --user disable --now punchgate.service', 'systemctl --user daemon-reload'])
    assert.equal(await exists(join(box.home, '.config', 'systemd', 'user', 'punchgate.service')), false)
    assert.equal(await readFile(box.envFile, 'utf8'), settings)
    assert.ok(await exists(identity))
  })

  it('on macOS boots the agent out and removes its plist', async t => {
    const box = await sandbox(t)
    assert.equal((await box.run('darwin', ['up'])).code, 0)
    const { code, stderr } = await box.run('darwin', ['down'])
    assert.equal(code, 0, stderr)
    assert.deepEqual((await box.calls()).slice(3), [`launchctl bootout gui/${UID}/punchgate`])
    assert.equal(await exists(join(box.home, 'Library', 'LaunchAgents', 'punchgate.plist')), false)
    assert.ok(await exists(box.envFile))
  })

  it('with no service installed says so and calls nothing', async t => {
    const box = await sandbox(t)
    const { code, stdout } = await box.run('linux', ['down'])
    assert.equal(code, 0)
    assert.match(stdout, /^punchgate: no service installed/)
    assert.deepEqual(await box.calls(), [])
  })
})

describe('punchgate logs', () => {
  it("on Linux prints the unit's journal", async t => {
    const box = await sandbox(t, { journalctl: 'echo \'{"event":"node.started"}\'' })
    const { code, stdout, stderr } = await box.run('linux', ['logs', '-f', '-n', '20'])
    assert.equal(code, 0, stderr)
    assert.equal(stdout, '{"event":"node.started"}\n')
    assert.deepEqual(await box.calls(), ['journalctl --user --unit=punchgate.service --lines=20 --output=cat --follow'])
  })

  it("on macOS prints the agent's log file", async t => {
    const box = await sandbox(t)
    const log = join(box.home, 'Library', 'Logs', 'punchgate.log')
    await mkdir(join(box.home, 'Library', 'Logs'), { recursive: true })
    await writeFile(log, '')
    const { code, stderr } = await box.run('darwin', ['logs'])
    assert.equal(code, 0, stderr)
    assert.deepEqual(await box.calls(), [`tail -n 50 ${log}`])
  })

  it('on macOS without a log file says how to start the service', async t => {
    const box = await sandbox(t)
    const { code, stderr } = await box.run('darwin', ['logs'])
    assert.equal(code, 1)
    assert.match(stderr, /^punchgate: no log file at .*punchgate up/)
    assert.deepEqual(await box.calls(), [])
  })

  it('passes on the exit status of the log reader', async t => {
    const box = await sandbox(t, { journalctl: 'echo "No journal files were found." >&2; exit 1' })
    const { code, stderr } = await box.run('linux', ['logs'])
    assert.equal(code, 1)
    assert.equal(stderr, 'No journal files were found.\n')
  })

  it('rejects a negative line count', async t => {
    const box = await sandbox(t)
    assert.equal((await box.run('linux', ['logs', '-n', '-1'])).code, 2)
  })
})

async function firstEvent (stream: NodeJS.ReadableStream, event: string): Promise<Record<string, unknown>> {
  for await (const line of createInterface({ input: stream })) {
    const record = JSON.parse(line) as Record<string, unknown>
    if (record.event === event) return record
  }
  throw new Error(`the daemon's stdout ended before ${event}`)
}
