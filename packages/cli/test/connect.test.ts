import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough, Writable } from 'node:stream'
import { randomBytes, createHash } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { silentLogger, startNode, validateConfig, waitForEvent, type PunchgateNode, type RawConfig } from '@punchgate/node'
import type { Io } from '../src/command.ts'
import { runDaemon } from '../src/commands/run.ts'
import { main } from '../src/main.ts'
import { BIN, binEnv, capture, lines, waitForText } from './fixtures.ts'

const sha = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex')

async function node (raw: RawConfig): Promise<PunchgateNode> {
  return startNode(validateConfig({ listen: ['/ip4/127.0.0.1/tcp/0'], rttIntervalMs: 0, ...raw }), {
    privateKey: await generateKeyPair('Ed25519'), logger: silentLogger
  })
}

async function listen (server: Server): Promise<number> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  if (address == null || typeof address === 'string') throw new Error('no port')
  return address.port
}

/** A binary stdout for in-process runs. */
function sink (): Writable & { bytes: () => Buffer } {
  const chunks: Buffer[] = []
  const stream = new Writable({ write (chunk: Buffer, _enc, done) { chunks.push(chunk); done() } })
  return Object.assign(stream, { bytes: () => Buffer.concat(chunks) })
}

interface Run { code: number | null, stdout: Buffer, stderr: string }

/**
 * The real executable with `input` on stdin. stdin is ended after the input unless
 * `keepStdinOpen`, in which case it stays open until the process has exited.
 */
async function spawnBin (args: string[], input: Buffer, env: NodeJS.ProcessEnv, keepStdinOpen = false): Promise<Run> {
  const child = spawn(BIN, args, { env: binEnv(env) })
  const out: Buffer[] = []
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => out.push(c))
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  child.stdin.on('error', () => {})
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  if (keepStdinOpen) child.stdin.write(input)
  else child.stdin.end(input)
  // 'close' comes after 'exit' and after stdout/stderr are drained, and carries the code too.
  const [code] = await once(child, 'close') as [number | null]
  clearTimeout(timer)
  child.stdin.destroy()
  return { code, stdout: Buffer.concat(out), stderr }
}

describe('punchgate connect and status', () => {
  let dir: string
  let sock: string
  let env: NodeJS.ProcessEnv
  let bootstrap: PunchgateNode
  let provider: PunchgateNode
  let bootAddr: string
  let echo: Server
  let banner: Server
  let stopDaemon: AbortController
  let daemon: Promise<number>

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'punchgate-connect-test-'))
    sock = join(dir, 'control.sock')
    // A fake systemctl, so the service manager's view is known.
    await writeFile(join(dir, 'systemctl'), '#!/bin/sh\necho active\n')
    await chmod(join(dir, 'systemctl'), 0o755)
    env = { XDG_STATE_HOME: join(dir, 'state'), PATH: `${dir}:${join(process.execPath, '..')}:/usr/bin:/bin` }

    echo = createServer({ allowHalfOpen: true }, s => { s.on('error', () => {}); s.pipe(s) })
    banner = createServer(s => { s.on('error', () => {}); s.end('SSH-2.0-banner\r\n') })
    const [echoPort, bannerPort] = await Promise.all([listen(echo), listen(banner)])

    bootstrap = await node({})
    bootAddr = bootstrap.addrs()[0] ?? ''
    provider = await node({ bootstrap: [bootAddr], allowAny: true, expose: [`echo=127.0.0.1:${echoPort}`, `banner=127.0.0.1:${bannerPort}`] })
    await Promise.all(['echo', 'banner'].map(async name =>
      waitForEvent(provider.events, 'service.published', e => e.name === name, AbortSignal.timeout(20_000))))

    stopDaemon = new AbortController()
    const daemonOut = capture()
    const io: Io = { stdout: daemonOut, stderr: capture(), env }
    daemon = runDaemon({
      identity: join(dir, 'daemon.key'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [bootAddr], control: sock, role: 'private'
    }, io, stopDaemon.signal)
    await waitForText(daemonOut, /"event":"phase.changed".*"to":"ready"/)
  })

  after(async () => {
    stopDaemon?.abort()
    await daemon
    await Promise.all([provider?.stop(), bootstrap?.stop()])
    echo?.close()
    banner?.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('in-process, through the daemon: 1 MiB each way byte-exact, stdin EOF half-closes', async () => {
    const data = randomBytes(1024 * 1024)
    const stdin = new PassThrough()
    stdin.end(data)
    const stdout = sink()
    const stderr = capture()
    const code = await main([process.execPath, BIN, 'connect', 'echo', '--control', sock], { stdin, stdout, stderr, env })
    assert.equal(code, 0, stderr.text())
    assert.equal(sha(stdout.bytes()), sha(data))
    assert.equal(stderr.text(), '')
  })

  it('the executable, through the daemon: byte-exact both ways', async () => {
    const data = randomBytes(1024 * 1024)
    const { code, stdout, stderr } = await spawnBin(['connect', 'echo', '--control', sock], data, env)
    assert.equal(code, 0, stderr)
    assert.equal(stdout.length, data.length)
    assert.equal(sha(stdout), sha(data))
  })

  it('the remote closing ends the process with status 0 while stdin is still open', async () => {
    const { code, stdout, stderr } = await spawnBin(['connect', `${provider.peerId}:banner`, '--control', sock], Buffer.alloc(0), env, true)
    assert.equal(code, 0, stderr)
    assert.equal(stdout.toString(), 'SSH-2.0-banner\r\n')
  })

  it('the executable without a daemon starts a short-lived node: byte-exact, logs only on stderr', async () => {
    const data = randomBytes(256 * 1024)
    const { code, stdout, stderr } = await spawnBin(
      ['connect', 'echo', '--control', join(dir, 'none.sock'), '--bootstrap', bootAddr, '--identity', join(dir, 'short.key')], data, env)
    assert.equal(code, 0, stderr)
    assert.equal(sha(stdout), sha(data))
  })

  it('an unknown service: one stderr line, exit 1, nothing on stdout (daemon and short-lived node)', async () => {
    const viaDaemon = await spawnBin(['connect', 'nope', '--control', sock], Buffer.from('x'), env)
    assert.equal(viaDaemon.code, 1)
    assert.equal(viaDaemon.stdout.length, 0)
    assert.deepEqual(lines(viaDaemon.stderr), ['punchgate: no peer provides service "nope"'])

    const standalone = await spawnBin(
      ['connect', `${provider.peerId}:nope`, '--control', join(dir, 'none.sock'), '--bootstrap', bootAddr, '--identity', join(dir, 'short.key')],
      Buffer.from('x'), env)
    assert.equal(standalone.code, 1)
    assert.equal(standalone.stdout.length, 0)
    assert.deepEqual(lines(standalone.stderr), ['punchgate: cannot open service "nope": refused (unknown-service)'])
  })

  it('no daemon and no --bootstrap: exit 1 with what to do', async () => {
    const stderr = capture()
    const code = await main([process.execPath, BIN, 'connect', 'echo', '--control', join(dir, 'none.sock')],
      { stdin: new PassThrough(), stdout: sink(), stderr, env })
    assert.equal(code, 1)
    assert.match(stderr.text(), /^punchgate: no punchgate daemon is running .* give --bootstrap/)
  })

  it('a malformed target is a usage error (exit 2)', async () => {
    const stderr = capture()
    const code = await main([process.execPath, BIN, 'connect', 'notapeer:echo', '--control', sock], { stdin: new PassThrough(), stdout: sink(), stderr, env })
    assert.equal(code, 2)
    assert.match(stderr.text(), /connect "notapeer:echo": "notapeer" is not a peer id/)
  })

  it('status shows the service manager and the live daemon; --json has the same', async () => {
    const out = capture()
    const code = await main([process.execPath, BIN, 'status', '--control', sock], { stdout: out, stderr: capture(), env })
    assert.equal(code, 0)
    const text = out.text()
    assert.match(text, /^service: +systemd --user: active$/m)
    assert.match(text, /^role: +private \(--role private\), phase ready$/m)
    assert.match(text, new RegExp(`^  ${provider.peerId} +direct `, 'm'))
    assert.match(text, /^connect sessions: 0 open, [1-9]\d* total/m)

    const json = capture()
    assert.equal(await main([process.execPath, BIN, 'status', '--json', '--control', sock], { stdout: json, stderr: capture(), env }), 0)
    const report = JSON.parse(json.text())
    assert.equal(report.service.state, 'active')
    assert.equal(report.daemon.phase, 'ready')
    assert.ok(report.daemon.peers.some((p: { peer: string }) => p.peer === bootstrap.peerId))
  })

  it('status of a daemon that is not running says so and exits 3', async () => {
    const out = capture()
    const none = join(dir, 'none.sock')
    assert.equal(await main([process.execPath, BIN, 'status', '--control', none], { stdout: out, stderr: capture(), env }), 3)
    assert.match(out.text(), new RegExp(`^daemon: +not running \\(nothing answers on ${none}\\)$`, 'm'))
    const json = capture()
    assert.equal(await main([process.execPath, BIN, 'status', '--json', '--control', none], { stdout: json, stderr: capture(), env }), 3)
    assert.equal(JSON.parse(json.text()).daemon, null)
  })

  it('a second daemon on the same control socket refuses to start (exit 1)', async () => {
    const stderr = capture()
    const code = await main([process.execPath, BIN, '--control', sock, '--identity', join(dir, 'second.key'), '--listen', '/ip4/127.0.0.1/tcp/0'],
      { stdout: capture(), stderr, env })
    assert.equal(code, 1)
    assert.deepEqual(lines(stderr.text()), [`punchgate: --control ${JSON.stringify(sock)}: another punchgate daemon is running on this control socket`])
  })
})
