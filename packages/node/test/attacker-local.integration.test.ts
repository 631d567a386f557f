/**
 * Attacks from the same machine and from a peer that floods the logs (issue 18, items 4
 * and 5): another local user's socket in the control socket's place is refused before a
 * byte is sent; key files another user could read, replace or plant are refused; a peer's
 * 1,000 bad requests cost a handful of log lines; a service name with terminal escapes is
 * a `bad-request` on the wire and never reaches the log.
 *
 * Another uid needs root: the tests that need one say so and fail when not run as root
 * (CI runs them as root), rather than pass without having tried.
 */
import { describe, it, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmod, chown, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { lpStream } from '@libp2p/utils'
import {
  ControlServer, createIdentityFile, KnownProviders, loadOrCreateIdentity, readAllowFile, readSwarmKey, readTrustFile, requestConnect, requestStatus,
  TUNNEL_PROTOCOL, UDP_PROTOCOL
} from '../src/index.ts'
import { createSwarmKeyFile } from '../src/swarm-key.ts'
import { decodeReply } from '../src/protocol/handshake.ts'
import { echoServer, recordingLogger, tcpAddr, testNode, until } from './fixtures.ts'

const NOBODY = 65534
const CLI_BIN = new URL('../../cli/bin/punchgate.js', import.meta.url).pathname
/** ESC [ 2 J (clear screen) and an OSC window title: what a hostile name would carry. */
const ESCAPES = 'echo\u001b[2J\u001b]0;pwned\u0007'

/** Tests that act as a second local user need root to become one; say so instead of passing untried. */
function requireRoot (): void {
  assert.equal(process.getuid?.(), 0, 'this test starts a process as uid 65534 (nobody) and must run as root, as CI does')
  assert.equal(spawnSync('setpriv', ['--version']).status, 0, 'setpriv (util-linux) is needed to run a process as another uid')
}

async function privateDir (t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pg-local-'))
  t.after(async () => rm(dir, { recursive: true, force: true }))
  return dir
}

/**
 * Another user's listener on `path`: it answers each connection with `<n>:<first data>` and
 * reports the same on stdout, n counting connections from 1. Resolves once it listens.
 */
async function fakeSocketAs (uid: number, path: string, t: TestContext): Promise<{ child: ChildProcess, reports: string[] }> {
  const script = `
    const net = require('node:net')
    let n = 0
    net.createServer(s => {
      const id = ++n
      s.once('data', d => { const line = id + ':' + d.toString().trim(); console.log(line); s.end(line + '\\n') })
      s.on('error', () => {})
    }).listen(process.argv[1], () => console.log('listening'))`
  const child = spawn('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, '-e', script, path],
    { stdio: ['ignore', 'pipe', 'inherit'] })
  t.after(() => { child.kill() })
  const reports: string[] = []
  const lines = createInterface({ input: child.stdout! })
  await new Promise<void>((resolve, reject) => {
    child.once('exit', code => reject(new Error(`fake socket process exited (${code})`)))
    lines.on('line', line => { if (line === 'listening') resolve(); else reports.push(line) })
  })
  return { child, reports }
}

/** Connects as ourselves and sends `probe`: the answer's number says how many connections came before. */
async function probe (path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(path, () => socket.write('probe\n'))
    let answer = ''
    socket.on('data', d => { answer += d.toString() })
    socket.on('end', () => resolve(answer.trim()))
    socket.on('error', reject)
  })
}

async function runCli (args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return new Promise(resolve => {
    execFile(process.execPath, [CLI_BIN, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err == null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr })
    })
  })
}

describe('a local attacker', () => {
  it("another user's socket in the control socket's place: the client refuses it and sends nothing", async t => {
    requireRoot()
    const dir = await privateDir(t)
    // Shared like /tmp: anyone may create a file here, so the other user claims the name first.
    await chmod(dir, 0o1777)
    const path = join(dir, 'control.sock')
    const fake = await fakeSocketAs(NOBODY, path, t)
    assert.equal((await stat(path)).uid, NOBODY)

    await assert.rejects(requestStatus(path), { name: 'ControlError', message: /owned by another user \(uid 65534; you are uid 0\)/ })
    await assert.rejects(requestConnect(path, { service: 'echo' }), { name: 'ControlError', message: /owned by another user/ })
    for (const args of [['status', '--control', path], ['connect', 'echo', '--control', path]]) {
      const { code, stdout, stderr } = await runCli(args)
      assert.equal(code, 1, `punchgate ${args.join(' ')}: ${stderr}`)
      assert.equal(stdout, '')
      assert.match(stderr, /^punchgate: control socket .*: owned by another user \(uid 65534; you are uid 0\); nothing sent\n$/)
    }

    // Connections are accepted in order: had any of the above connected, the probe would not be number 1.
    assert.equal(await probe(path), '1:probe')
    assert.deepEqual(fake.reports, ['1:probe'], 'nothing reached the fake socket but the probe')
  })

  it('a control socket in a directory others can write: the daemon will not listen there, and the client will not use one', async t => {
    const dir = await privateDir(t)
    const shared = join(dir, 'shared')
    await mkdir(shared)
    await chmod(shared, 0o777)
    await assert.rejects(ControlServer.listen(join(shared, 'control.sock')), { name: 'ControlError', message: /its directory .*shared is writable by group or others \(mode 0777\)/ })

    // Our own socket, then the directory opened up: the client will not trust it any more.
    const own = join(dir, 'own')
    const server = await ControlServer.listen(join(own, 'control.sock'))
    t.after(async () => server.close())
    assert.equal((await stat(own)).mode & 0o777, 0o700, 'a fresh directory is made 0700')
    await chmod(own, 0o770)
    await assert.rejects(requestStatus(join(own, 'control.sock')), { name: 'ControlError', message: /writable by group or others \(mode 0770\).*; nothing sent$/ })
  })

  it('key files in a directory others can write are refused, where a fresh or private directory works', async t => {
    const dir = await privateDir(t)
    const created = await loadOrCreateIdentity(join(dir, 'fresh', 'deeper', 'identity.key'))
    assert.equal(created.created, true)
    assert.equal((await stat(join(dir, 'fresh'))).mode & 0o777, 0o700)
    assert.equal((await stat(join(dir, 'fresh', 'deeper'))).mode & 0o777, 0o700)

    const groupWritable = join(dir, 'group')
    await mkdir(groupWritable, { mode: 0o700 })
    await createIdentityFile(join(groupWritable, 'identity.key'), false)
    await createSwarmKeyFile(join(groupWritable, 'swarm.key'), false)
    await chmod(groupWritable, 0o770)
    await assert.rejects(loadOrCreateIdentity(join(groupWritable, 'identity.key')), { name: 'IdentityError', message: /writable by group or others \(mode 0770\)/ })
    assert.throws(() => readSwarmKey(join(groupWritable, 'swarm.key')), { name: 'SecretFileError', message: /writable by group or others/ })
    await assert.rejects(createIdentityFile(join(groupWritable, 'new.key'), false), { name: 'SecretFileError', message: /writable by group or others/ })
    // Lists that decide who is let in or trusted as a provider: the same rule.
    await writeFile(join(groupWritable, 'allow.txt'), `${created.peerId}\n`, { mode: 0o600 })
    assert.throws(() => readAllowFile(join(groupWritable, 'allow.txt')), { name: 'ConfigError', message: /writable by group or others/ })
    assert.throws(() => readTrustFile(join(groupWritable, 'allow.txt')), { name: 'ConfigError', message: /writable by group or others/ })
    await writeFile(join(groupWritable, 'known-providers'), `echo ${created.peerId}\n`, { mode: 0o600 })
    assert.throws(() => new KnownProviders(join(groupWritable, 'known-providers')).pinned('echo'), { name: 'KnownProvidersError', message: /writable by group or others/ })

    // Straight in a sticky shared directory (/tmp-like): refused, others could have made the file.
    const sticky = join(dir, 'sticky')
    await mkdir(sticky)
    await chmod(sticky, 0o1777)
    await assert.rejects(loadOrCreateIdentity(join(sticky, 'identity.key')), { name: 'IdentityError', message: /mode 1777/ })
    // A private directory inside it is fine: sticky shared directories are allowed further up.
    assert.equal((await loadOrCreateIdentity(join(sticky, 'mine', 'identity.key'))).created, true)

    // ...but not a non-sticky shared one: the private directory could be renamed away and replaced.
    const open = join(dir, 'open')
    await mkdir(join(open, 'mine'), { recursive: true, mode: 0o700 })
    await chmod(open, 0o777)
    await assert.rejects(loadOrCreateIdentity(join(open, 'mine', 'identity.key')), { name: 'IdentityError', message: /its directory .*open is writable/ })
  })

  it('key files another user owns, or in a directory another user owns, are refused', async t => {
    requireRoot()
    const dir = await privateDir(t)
    const key = join(dir, 'identity.key')
    await createIdentityFile(key, false)
    await chown(key, NOBODY, NOBODY)
    await assert.rejects(loadOrCreateIdentity(key), { name: 'IdentityError', message: /is owned by another user \(uid 65534; you are uid 0\)/ })

    const theirs = join(dir, 'theirs')
    await mkdir(theirs, { mode: 0o700 })
    await createSwarmKeyFile(join(theirs, 'swarm.key'), false)
    await chown(theirs, NOBODY, NOBODY)
    assert.throws(() => readSwarmKey(join(theirs, 'swarm.key')), { name: 'SecretFileError', message: /its directory .*theirs is owned by another user/ })

    const { code, stdout, stderr } = await runCli(['id', '--identity', key])
    assert.equal(code, 1, stderr)
    assert.equal(stdout, '')
    assert.match(stderr, /^punchgate: --identity ".*identity.key": is owned by another user \(uid 65534; you are uid 0\)\n$/)
  })
})

/** A bare libp2p peer, so requests can be anything. */
async function rawPeer (t: TestContext): Promise<Libp2p> {
  const peer = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
  t.after(async () => peer.stop())
  return peer
}

/** Sends one request frame on a new stream and returns the server's reply (or the error that ended the stream). */
async function ask (peer: Libp2p, addr: string, protocol: string, request: unknown): Promise<ReturnType<typeof decodeReply>> {
  const stream = await peer.dialProtocol(multiaddr(addr), protocol)
  const lp = lpStream(stream)
  await lp.write(new TextEncoder().encode(JSON.stringify(request)))
  const reply = decodeReply((await lp.read()).subarray())
  await stream.close().catch(() => {})
  return reply
}

describe('a peer flooding the logs', () => {
  it('1,000 bad requests give five log lines and one summary; each is still a rejection event', { timeout: 120_000 }, async t => {
    const logger = recordingLogger()
    const echo = await echoServer()
    t.after(async () => echo.close())
    const bad = await rawPeer(t)
    const badId = bad.peerId.toString()
    // Even a peer on the allow list: a name outside the rule is refused before anything else.
    const provider = await testNode({ expose: [`echo=127.0.0.1:${echo.port}`], allow: [badId] }, { logger })
    let stopped = false
    t.after(async () => { if (!stopped) await provider.stop({ drainMs: 0 }) })
    let dispatched = 0
    provider.events.onEvent('tunnel.rejected', e => { if (e.peer === badId) dispatched++ })

    const REQUESTS = 1000
    const BATCH = 50
    // One request alone first: yamux resets an 11th stream opened before the connection is fully up.
    assert.equal(await ask(bad, tcpAddr(provider), TUNNEL_PROTOCOL, { service: ESCAPES }).then(r => !r.accepted && r.reason), 'bad-request')
    for (let sent = 1; sent < REQUESTS; sent += BATCH) {
      const replies = await Promise.all(Array.from({ length: Math.min(BATCH, REQUESTS - sent) }, async (_, i) =>
        ask(bad, tcpAddr(provider), (sent + i) % 2 === 0 ? TUNNEL_PROTOCOL : UDP_PROTOCOL, { service: ESCAPES })))
      for (const reply of replies) assert.equal(!reply.accepted && reply.reason, 'bad-request')
    }
    await until(() => dispatched === REQUESTS, 10_000)
    assert.equal(echo.connections(), 0)

    // Besides these, the peer's connection is logged when it comes and goes (peer.connected, peer.disconnected).
    const fromBad = (): Array<Record<string, unknown>> => logger.records.filter(r => r.peer === badId && String(r.event).startsWith('tunnel.'))
    assert.deepEqual(fromBad().map(r => r.event), Array(5).fill('tunnel.rejected'), 'five lines while the flood lasts')
    await provider.stop({ drainMs: 0 })
    stopped = true
    const lines = fromBad()
    assert.equal(lines.length, 6, 'and one summary when the window closes (here: at stop)')
    assert.ok(logger.records.filter(r => r.peer === badId).length <= 8, 'a handful of lines from that peer in all')
    assert.deepEqual(lines[5], {
      event: 'tunnel.rejected-suppressed', side: 'server', peer: badId, count: REQUESTS - 5, reasons: { 'bad-request': REQUESTS - 5 }, windowMs: 60_000
    })
    t.diagnostic(`${REQUESTS} bad requests: ${logger.records.filter(r => r.peer === badId).length} log lines about that peer, ${JSON.stringify(logger.records).length} bytes logged in all`)
    assert.ok(!JSON.stringify(logger.records).includes('pwned'), 'the peer\'s name never reached the log')
  })

  it('a service name with terminal escapes is `bad-request` on the wire, TCP and UDP, before any lookup', async t => {
    const logger = recordingLogger()
    const echo = await echoServer()
    t.after(async () => echo.close())
    const bad = await rawPeer(t)
    const provider = await testNode({ expose: [`echo=127.0.0.1:${echo.port}`], allow: [bad.peerId.toString()] }, { logger })
    t.after(async () => provider.stop({ drainMs: 0 }))
    for (const protocol of [TUNNEL_PROTOCOL, UDP_PROTOCOL]) {
      const reply = await ask(bad, tcpAddr(provider), protocol, { service: ESCAPES })
      assert.equal(reply.accepted, false)
      assert.equal(!reply.accepted && reply.reason, 'bad-request', protocol)
    }
    // A name that passes the rule but is not ours is told apart: the rule came first above.
    const unknown = await ask(bad, tcpAddr(provider), TUNNEL_PROTOCOL, { service: 'nope' })
    assert.equal(!unknown.accepted && unknown.reason, 'unknown-service')
    const rejected = logger.records.filter(r => r.event === 'tunnel.rejected')
    assert.deepEqual(rejected.map(r => [r.service, r.reason]), [['', 'bad-request'], ['', 'bad-request'], ['nope', 'unknown-service']])
    assert.equal(echo.connections(), 0)
  })
})
