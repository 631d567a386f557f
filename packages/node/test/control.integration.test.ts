import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { PunchgateNode } from '../src/node.ts'
import { ControlServer } from '../src/control/server.ts'
import { DaemonError, requestConnect, requestStatus } from '../src/control/client.ts'
import { echoServer, event, random, sha256, tcpAddr, testNode } from './fixtures.ts'

/** Sends `data` over a control session, half-closes, and collects everything until the remote's FIN. */
async function exchange (socket: Socket, data: Uint8Array): Promise<Buffer> {
  const chunks: Buffer[] = []
  socket.on('data', (chunk: Buffer) => chunks.push(chunk))
  const ended = once(socket, 'end')
  socket.resume()
  socket.end(data)
  await ended
  socket.destroy()
  return Buffer.concat(chunks)
}

/** A service that speaks first and then closes: the remote ends the session. */
async function bannerServer (banner: string): Promise<{ server: Server, port: number }> {
  const server = createServer(socket => { socket.on('error', () => {}); socket.end(banner) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  if (address == null || typeof address === 'string') throw new Error('no port')
  return { server, port: address.port }
}

describe('control socket and openTunnelStream', () => {
  let dir: string
  let sock: string
  let bootstrap: PunchgateNode
  let provider: PunchgateNode
  let consumer: PunchgateNode
  let control: ControlServer
  let echo: Awaited<ReturnType<typeof echoServer>>
  let banner: Awaited<ReturnType<typeof bannerServer>>

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'punchgate-control-'))
    sock = join(dir, 'run', 'control.sock')
    echo = await echoServer()
    banner = await bannerServer('hello from the remote\n')
    bootstrap = await testNode()
    provider = await testNode({
      bootstrap: [tcpAddr(bootstrap)],
      allowAny: true,
      expose: [`echo=127.0.0.1:${echo.port}`, `banner=127.0.0.1:${banner.port}`]
    })
    await Promise.all([
      event(provider, 'service.published', e => e.name === 'echo'),
      event(provider, 'service.published', e => e.name === 'banner')
    ])
    consumer = await testNode({ bootstrap: [tcpAddr(bootstrap)], metrics: '127.0.0.1:0', rttIntervalMs: 200 })
    control = await ControlServer.listen(sock)
    control.serve(consumer)
  })

  after(async () => {
    await control?.close()
    await Promise.all([consumer?.stop(), provider?.stop(), bootstrap?.stop()])
    await echo?.close()
    banner?.server.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('creates the socket owner-only in a 0700 directory', async () => {
    assert.equal((await stat(sock)).mode & 0o777, 0o600)
    assert.equal((await stat(join(dir, 'run'))).mode & 0o777, 0o700)
  })

  it('status answers with the live node', async () => {
    const { status, connects } = await requestStatus(sock)
    assert.equal(status.peerId, consumer.peerId)
    assert.equal(status.role, 'private')
    assert.ok(status.peers.some(p => p.peer === bootstrap.peerId && p.path === 'direct'), JSON.stringify(status.peers))
    assert.ok(status.metrics?.startsWith('http://127.0.0.1:'))
    assert.ok(!Number.isNaN(Date.parse(status.startedAt)))
    assert.deepEqual(connects, { open: 0, opened: 0, failed: 0, bytesIn: 0, bytesOut: 0 })
  })

  it('connect by name carries 1 MiB each way byte-exact, with half-close', async () => {
    const session = await requestConnect(sock, { service: 'echo' })
    assert.equal(session.peer, provider.peerId)
    assert.equal(session.path, 'direct')
    const data = random(1024 * 1024)
    const echoed = await exchange(session.socket, data)
    assert.equal(echoed.length, data.length)
    assert.equal(sha256(echoed), sha256(data))
  })

  it('connect by peer id; bytes the remote sends first arrive whole, and its close ends the session', async () => {
    const closed = event(consumer, 'tunnel.closed', e => e.service === 'banner')
    const session = await requestConnect(sock, { service: 'banner', peer: provider.peerId })
    const received = await exchange(session.socket, Buffer.alloc(0))
    assert.equal(received.toString(), 'hello from the remote\n')
    const record = await closed
    assert.equal(record.tunnel, `connect:${provider.peerId}:banner`)
    assert.equal(record.error, undefined)
  })

  it('an unknown service by name is refused with one clear message', async () => {
    await assert.rejects(requestConnect(sock, { service: 'nope' }), (err: Error) => {
      assert.equal(err.name, DaemonError.NAME)
      assert.equal(err.message, 'no peer provides service "nope"')
      return true
    })
  })

  it("a service the given peer does not expose is refused with the peer's reason", async () => {
    const targetConnections = echo.connections()
    await assert.rejects(requestConnect(sock, { service: 'nope', peer: provider.peerId }), { message: 'cannot open service "nope": refused (unknown-service)' })
    assert.equal(echo.connections(), targetConnections)
  })

  it('counts sessions in status and in the metrics', async () => {
    const { connects, status } = await requestStatus(sock)
    assert.equal(connects.opened, 2)
    assert.equal(connects.open, 0)
    assert.equal(connects.failed, 2)
    assert.equal(connects.bytesOut, 1024 * 1024)
    const text = await (await fetch(status.metrics ?? '')).text()
    assert.match(text, /^punchgate_tunnel_connections_total\{side="client",service="echo",path="direct"\} 1$/m)
    assert.match(text, /^punchgate_tunnel_bytes_total\{side="client",service="echo",direction="out"\} 1048576$/m)
    assert.match(text, /^punchgate_tunnel_rejections_total\{side="client",reason="unknown-service"\} 1$/m)
    assert.match(text, /^punchgate_holepunch_total\{outcome="succeeded"\} 0$/m)
    assert.match(text, /^punchgate_peers\{path="direct"\} 2$/m)
    // libp2p's own metrics share the endpoint.
    assert.match(text, /^libp2p_/m)
  })

  it('logs peer.rtt for connected peers', async () => {
    const rtt = await event(consumer, 'peer.rtt', e => e.peer === bootstrap.peerId)
    assert.equal(rtt.path, 'direct')
    assert.ok(rtt.rttMs >= 0 && rtt.rttMs < 10_000, String(rtt.rttMs))
  })

  it('refuses to start a second server on a live socket', async () => {
    await assert.rejects(ControlServer.listen(sock), { name: 'ControlSocketInUseError' })
  })

  it('replaces a stale socket file left by a killed daemon', async () => {
    const stale = join(dir, 'stale.sock')
    // A process killed while listening leaves its socket file behind.
    await new Promise<void>(resolve => {
      execFile(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`], () => resolve())
    })
    assert.ok((await stat(stale)).isSocket())
    const server = await ControlServer.listen(stale)
    server.serve(consumer)
    assert.equal((await requestStatus(stale)).status.peerId, consumer.peerId)
    await server.close()
    await assert.rejects(stat(stale), { code: 'ENOENT' }, 'closing removes the socket file')
  })

  it('leaves a path that is not a socket alone', async () => {
    const file = join(dir, 'not-a-socket')
    await writeFile(file, 'keep me')
    await assert.rejects(ControlServer.listen(file), /exists and is not a socket/)
  })

  it('answers a malformed request with an error line', async () => {
    const { connect } = await import('node:net')
    const socket = connect({ path: sock })
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.end('{"op":"reboot"}\n')
    await once(socket, 'close')
    assert.deepEqual(JSON.parse(Buffer.concat(chunks).toString()), { ok: false, error: 'unknown op "reboot"', code: 'ControlError' })
  })
})
