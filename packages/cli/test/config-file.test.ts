/**
 * `--config FILE` (TOML): keys and kinds, precedence (flags > environment > file >
 * defaults), relative paths, one-line errors naming file, line and key, `up --config`,
 * the worked examples in deploy/config/, and a tunnel from a daemon configured by a file.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { connect, createServer, type Server } from 'node:net'
import { join, relative } from 'node:path'
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { loadOrCreateIdentity, silentLogger, startNode, validateConfig, waitForEvent, type PunchgateNode } from '@punchgate/node'
import { parse } from '../src/main.ts'
import { daemonSettings, runDaemon, type RunArgs } from '../src/commands/run.ts'
import { main } from '../src/main.ts'
import { BIN, assertUsageError, capture, captureIo, cli, lines, tempDir, waitForText } from './fixtures.ts'

const PEER = '12D3KooWSTrqRiX7VmAocYibHVWuNkmmCdkYj7XidphoYvLui6xD'
const OTHER = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'
const BOOT = `/ip4/203.0.113.7/tcp/4001/p2p/${PEER}`
const EXAMPLES = new URL('../../../deploy/config/', import.meta.url).pathname

async function settings (args: string[], env: NodeJS.ProcessEnv = {}): Promise<ReturnType<typeof daemonSettings>> {
  return daemonSettings((await parse(args, captureIo())).args as RunArgs, env)
}

async function configFile (dir: string, text: string, name = 'punchgate.toml'): Promise<string> {
  const path = join(dir, name)
  await writeFile(path, text)
  return path
}

describe('--config FILE: errors are one line naming the file, the line and the key, exit 2', () => {
  const cases: Array<[string, string, number, string, string[]]> = [
    ['an unknown key', `bootstrap = ["${BOOT}"]\nexpsoe = ["ssh=127.0.0.1:22"]\n`, 2, 'expsoe', ['unknown key']],
    ['a table', `bootstrap = ["${BOOT}"]\n\n[expose]\nssh = "127.0.0.1:22"\n`, 3, 'expose', ['expected a list of strings, got a table']],
    ['--config inside the file', `config = "other.toml"\n`, 1, 'config', ['unknown key']],
    ['a string where true or false is expected', `# comment\n\nmdns = "yes"\n`, 3, 'mdns', ['expected true or false, got "yes"']],
    ['a number where a list is expected', `listen = 4001\n`, 1, 'listen', ['expected a list of strings, got number 4001']],
    ['a number inside a list', `allow = [\n  "${PEER}",\n  true,\n]\n`, 3, 'allow', ['got an item that is boolean true']],
    ['a string where a number is expected', `rtt-interval = "30s"\n`, 1, 'rtt-interval', ['expected a number, got "30s"']],
    ['a value outside the choices', `log-level = "loud"\n`, 1, 'log-level', ['expected one of', '"loud"']],
    ['a path that is not a string', `allow-file = false\n`, 1, 'allow-file', ['expected a file path']],
    ['a bad expose spec in a list', `expose = [\n  "ssh=127.0.0.1:22",\n  "web=localhost",\n]\n`, 3, 'expose', ['"web=localhost"', 'HOST:PORT']],
    ['a bad peer id', `bootstrap = ["${BOOT}"]\nallow = ["alice"]\n`, 2, 'allow', ['"alice" is not a peer id']],
    ['a bad size', `relay-max-bytes = "lots"\n`, 1, 'relay-max-bytes', ['"lots"', 'positive size']],
    ['a bad count as a number', `max-sessions = 0\n`, 1, 'max-sessions', ['positive whole number']],
    ['a TOML syntax error', `bootstrap = ["${BOOT}"]\ntunnel-by-name = "ssh@127.0.0.1:2222\nmdns = true\n`, 2, 'tunnel-by-name', ['not valid TOML']],
    ['a key set twice', `mdns = true\nautonat = true\nmdns = false\n`, 3, 'mdns', ['not valid TOML']]
  ]
  for (const [what, text, line, key, parts] of cases) {
    it(what, async t => {
      const dir = await tempDir(t)
      const file = await configFile(dir, text)
      await assertUsageError(['--config', file], [`--config ${file}:${line}: ${key}: `, ...parts], dir)
    })
  }

  it('a file that cannot be read: one line naming it, exit 2', async t => {
    const dir = await tempDir(t)
    await assertUsageError(['--config', join(dir, 'missing.toml')], ['--config', 'missing.toml', 'cannot read (ENOENT)'], dir)
  })

  it('a file in a directory others can write is refused, as an --allow-file is', async t => {
    const dir = await tempDir(t)
    const open = join(dir, 'open')
    await mkdir(open)
    await chmod(open, 0o777)
    const file = await configFile(open, `allow = ["${PEER}"]\n`)
    await assertUsageError(['--config', file], ['--config', 'writable by group or others'], dir)
  })

  it('a bad flag is blamed on the flag, not on the file', async t => {
    const dir = await tempDir(t)
    const file = await configFile(dir, 'expose = ["ssh=127.0.0.1:22"]\n')
    const { code, stderr } = await cli(['--config', file, '--expose', 'web=localhost', '--identity', dir], { XDG_STATE_HOME: dir })
    assert.equal(code, 2)
    assert.match(lines(stderr)[0] ?? '', /^punchgate: --expose "web=localhost": /)
  })
})

describe('--config FILE: values and precedence', () => {
  it('reads every kind of key, a single string as a one-item list, numbers for counts', async t => {
    const dir = await tempDir(t)
    const file = await configFile(dir, [
      `bootstrap = "${BOOT}"`,
      'expose = ["ssh=127.0.0.1:22", "dns=127.0.0.1:53/udp"]',
      '"tunnel-by-name" = ["web@127.0.0.1:8080"]',
      `trust = ['${OTHER}']`,
      'mdns = true',
      'port-mapping = false',
      'allow-any = true',
      'rtt-interval = 2.5',
      'log-level = "debug"',
      'max-sessions = 64',
      'udp-idle-timeout = "30s"',
      'drain-timeout = 0'
    ].join('\n'))
    const got = await settings(['--config', file])
    assert.deepEqual(got.config.bootstrap, [BOOT])
    assert.deepEqual(got.config.expose.map(e => [e.name, e.transport]), [['ssh', undefined], ['dns', 'udp']])
    assert.deepEqual(got.config.tunnels.map(tunnel => tunnel.id), ['web@127.0.0.1:8080'])
    assert.deepEqual(got.config.trust, [OTHER])
    assert.equal(got.config.mdns, true)
    assert.equal(got.config.portMapping, false)
    assert.equal(got.config.allowAny, true)
    assert.equal(got.config.rttIntervalMs, 2500)
    assert.equal(got.logLevel, 'debug')
    assert.deepEqual(got.config.limits, { maxSessions: 64 })
    assert.equal(got.config.udpIdleMs, 30_000)
    assert.equal(got.drainMs, 0)
  })

  it('flags beat the environment, which beats the file, which beats the defaults; a list is replaced, not merged', async t => {
    const dir = await tempDir(t)
    const file = await configFile(dir, [
      'max-sessions = 10', 'max-sessions-per-peer = 5', 'udp-idle-timeout = "1m"', `allow = ["${PEER}"]`
    ].join('\n'))
    const { config } = await settings(['--config', file, '--max-sessions', '30', '--allow', OTHER], {
      PUNCHGATE_MAX_SESSIONS: '20', PUNCHGATE_MAX_SESSIONS_PER_PEER: '6'
    })
    assert.deepEqual(config.limits, { maxSessions: 30, maxSessionsPerPeer: 6 })
    assert.equal(config.udpIdleMs, 60_000)
    assert.deepEqual(config.allow, [OTHER])
    assert.equal(config.relayAllow, 'any', 'unset everywhere: the default')
  })

  it('PUNCHGATE_CONFIG names the file; --config beats it', async t => {
    const dir = await tempDir(t)
    const fromEnv = await configFile(dir, 'max-sessions = 7\n', 'env.toml')
    const fromFlag = await configFile(dir, 'max-sessions = 9\n', 'flag.toml')
    assert.deepEqual((await settings([], { PUNCHGATE_CONFIG: fromEnv })).config.limits, { maxSessions: 7 })
    assert.deepEqual((await settings(['--config', fromFlag], { PUNCHGATE_CONFIG: fromEnv })).config.limits, { maxSessions: 9 })
  })

  it("resolves relative paths in the file against the file's directory; flags and the environment against the working directory", async t => {
    const dir = await tempDir(t)
    const sub = join(dir, 'etc')
    await mkdir(sub)
    await writeFile(join(sub, 'allowed'), `${OTHER}\n`)
    await writeFile(join(sub, 'trusted'), `${PEER}\n`)
    const file = await configFile(sub, [
      'identity = "keys/node.key"', 'allow-file = "allowed"', 'trust-file = "trusted"', 'control = "run/control.sock"', 'known-providers = "pins"'
    ].join('\n'))
    const got = await settings(['--config', relative(process.cwd(), file)])
    assert.equal(got.identityPath, join(sub, 'keys', 'node.key'))
    assert.deepEqual(got.config.allow, [OTHER])
    assert.deepEqual(got.config.trust, [PEER])
    assert.equal(got.controlPath, join(sub, 'run', 'control.sock'))
    assert.equal(got.config.knownProviders, join(sub, 'pins'))

    const flagged = await settings(['--config', file, '--identity', 'mine.key'], { PUNCHGATE_CONTROL: 'ctl.sock' })
    assert.equal(flagged.identityPath, join(process.cwd(), 'mine.key'))
    assert.equal(flagged.controlPath, 'ctl.sock')
  })
})

describe('the worked examples in deploy/config/', () => {
  it('bootstrap.toml: a public node on fixed ports, announcing its public address, with relay caps', async () => {
    const { config, identityPath } = await settings(['--config', join(EXAMPLES, 'bootstrap.toml')])
    assert.deepEqual(config.bootstrap, [], 'no bootstrap: a public node')
    assert.deepEqual(config.listen, ['/ip4/0.0.0.0/tcp/4001', '/ip4/0.0.0.0/udp/4001/quic-v1'])
    assert.deepEqual(config.announce, ['/ip4/203.0.113.7/tcp/4001', '/ip4/203.0.113.7/udp/4001/quic-v1'])
    assert.deepEqual(config.relay, { maxReservations: 64, maxBytes: 2n * 1024n ** 3n, maxDurationMs: 12 * 3_600_000 })
    assert.deepEqual([config.udpPunch, config.udpPunchPort], [true, 4003], 'UDP punching on a port the firewall can open')
    assert.equal(identityPath, join(EXAMPLES, 'bootstrap.key'))
  })

  it('homelab.toml: a provider exposing ssh and a share to its allow list, with session caps', async () => {
    const { config } = await settings(['--config', join(EXAMPLES, 'homelab.toml')])
    assert.deepEqual(config.bootstrap, [BOOT])
    assert.deepEqual(config.expose, [
      { name: 'ssh', target: { host: '127.0.0.1', port: 22 } },
      { name: 'files', target: { host: '192.168.1.20', port: 445 }, allow: [OTHER] }
    ])
    assert.equal(config.allow.length, 2)
    assert.equal(config.allow[0], OTHER)
    assert.deepEqual(config.limits, { maxSessions: 64, maxSessionsPerPeer: 16 })
    assert.deepEqual(config.tunnels, [])
  })

  it('laptop.toml: a consumer with a tunnel by name to a trusted provider', async () => {
    const { config } = await settings(['--config', join(EXAMPLES, 'laptop.toml')])
    assert.deepEqual(config.bootstrap, [BOOT])
    assert.deepEqual(config.tunnels.map(tunnel => [tunnel.service, tunnel.bind]), [['ssh', { host: '127.0.0.1', port: 2222 }]])
    assert.equal(config.trust.length, 1)
    assert.deepEqual(config.expose, [])
  })
})

describe('punchgate up --config FILE', () => {
  async function sandbox (t: Parameters<typeof tempDir>[0]): Promise<{ dir: string, home: string, env: NodeJS.ProcessEnv, envFile: string }> {
    const dir = await tempDir(t)
    const bin = join(dir, 'bin')
    await mkdir(bin)
    await writeFile(join(bin, 'systemctl'), '#!/bin/sh\nexit 0\n')
    await chmod(join(bin, 'systemctl'), 0o755)
    const home = join(dir, 'home')
    return { dir, home, env: { HOME: home, PATH: bin }, envFile: join(home, '.config', 'punchgate', 'punchgate.env') }
  }

  async function up (env: NodeJS.ProcessEnv, args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
    const io = { ...captureIo(env), platform: 'linux' as const }
    const code = await main([process.execPath, BIN, 'up', ...args], io)
    return { code, stdout: io.stdout.text(), stderr: io.stderr.text() }
  }

  it("stores the file's absolute path for the service, and the file's identity is the service's", async t => {
    const box = await sandbox(t)
    const conf = join(box.dir, 'conf')
    await mkdir(conf)
    const file = await configFile(conf, `bootstrap = ["${BOOT}"]\nidentity = "node.key"\nexpose = ["ssh=127.0.0.1:22"]\nallow-any = true\n`)
    const { code, stdout, stderr } = await up(box.env, ['--config', relative(process.cwd(), file)])
    assert.equal(code, 0, stderr)
    const stored = await readFile(box.envFile, 'utf8')
    assert.match(stored, new RegExp(`^PUNCHGATE_CONFIG=${file}$`, 'm'))
    assert.doesNotMatch(stored, /PUNCHGATE_IDENTITY=/, 'a pinned default identity would beat the file')
    const { peerId } = await loadOrCreateIdentity(join(conf, 'node.key'))
    assert.match(stdout, new RegExp(`peer id +${peerId.toString()}\n`))
  })

  it('checks the file before writing anything: a bad key is one line, exit 2', async t => {
    const box = await sandbox(t)
    const file = await configFile(box.dir, 'bootstrap = 5\n')
    const { code, stderr } = await up(box.env, ['--config', file])
    assert.equal(code, 2)
    assert.deepEqual(lines(stderr).length, 1)
    assert.ok(stderr.includes(`--config ${file}:1: bootstrap: `), stderr)
    await assert.rejects(stat(box.envFile), { code: 'ENOENT' })
  })
})

describe('a daemon started with --config carries a tunnel', () => {
  async function listen (server: Server): Promise<number> {
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const address = server.address()
    if (address == null || typeof address === 'string') throw new Error('no port')
    return address.port
  }

  async function freePort (): Promise<number> {
    const server = createServer()
    const port = await listen(server)
    server.close()
    await once(server, 'close')
    return port
  }

  async function node (raw: Parameters<typeof validateConfig>[0]): Promise<PunchgateNode> {
    return startNode(validateConfig({ listen: ['/ip4/127.0.0.1/tcp/0'], rttIntervalMs: 0, ...raw }), {
      privateKey: await generateKeyPair('Ed25519'), logger: silentLogger
    })
  }

  it('1 MiB through a tunnel by name from the file comes back byte-exact', async t => {
    const dir = await tempDir(t)
    const echo = createServer({ allowHalfOpen: true }, socket => { socket.on('error', () => {}); socket.pipe(socket) })
    t.after(() => echo.close())
    const echoPort = await listen(echo)
    const client = await loadOrCreateIdentity(join(dir, 'client.key'))

    const bootstrap = await node({})
    t.after(async () => bootstrap.stop())
    const bootAddr = bootstrap.addrs()[0] ?? ''
    const provider = await node({ bootstrap: [bootAddr], expose: [`echo=127.0.0.1:${echoPort}`], allow: [client.peerId.toString()] })
    t.after(async () => provider.stop())
    await waitForEvent(provider.events, 'service.published', e => e.name === 'echo', AbortSignal.timeout(20_000))

    const bindPort = await freePort()
    const file = await configFile(dir, [
      '# the client, configured by file only',
      'identity = "client.key"',
      'listen = ["/ip4/127.0.0.1/tcp/0"]',
      `bootstrap = ["${bootAddr}"]`,
      `tunnel-by-name = ["echo@127.0.0.1:${bindPort}"]`,
      `trust = ["${provider.peerId}"]`,
      'rtt-interval = 0'
    ].join('\n'))
    const stop = new AbortController()
    const out = capture()
    const daemon = runDaemon({ config: file }, { stdout: out, stderr: capture(), env: { XDG_STATE_HOME: dir, XDG_RUNTIME_DIR: dir } }, stop.signal)
    t.after(async () => { stop.abort(); await daemon })
    await waitForText(out, /"event":"tunnel.activated"/)

    const data = randomBytes(1024 * 1024)
    const socket = connect(bindPort, '127.0.0.1')
    const chunks: Buffer[] = []
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.end(data)
    await once(socket, 'end')
    assert.ok(Buffer.concat(chunks).equals(data), 'byte-exact')
  })
})
