import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import type { PunchgateNode } from '../src/node.ts'
import { connectTo, echoServer, event, random, roundTrip, sha256, tcpAddr, testNode } from './fixtures.ts'

function portOf (bind: string): number {
  return Number(bind.slice(bind.lastIndexOf(':') + 1))
}

describe('three peers on loopback: bootstrap, provider, consumer', () => {
  let bootstrap: PunchgateNode
  let provider: PunchgateNode
  let consumer: PunchgateNode
  let echo: Awaited<ReturnType<typeof echoServer>>
  let byName: number
  let byPeer: number
  let unknown: number
  let down: number

  before(async () => {
    echo = await echoServer()
    bootstrap = await testNode()
    const boot = tcpAddr(bootstrap)
    provider = await testNode({
      bootstrap: [boot],
      allowAny: true,
      expose: [`echo=127.0.0.1:${echo.port}`, 'down=127.0.0.1:1']
    })
    await event(provider, 'service.published', e => e.name === 'echo')
    consumer = await testNode({
      bootstrap: [boot],
      tunnelByName: ['echo@127.0.0.1:0'],
      tunnel: [`${provider.peerId}:echo@127.0.0.1:0`, `${provider.peerId}:nope@127.0.0.1:0`, `${provider.peerId}:down@127.0.0.1:0`]
    })
    const listening = new Map<string, number>()
    for (const t of consumer.tunnels()) listening.set(t.tunnel, portOf(t.bind))
    byName = listening.get('echo@127.0.0.1:0') ?? 0
    byPeer = listening.get(`${provider.peerId}:echo@127.0.0.1:0`) ?? 0
    unknown = listening.get(`${provider.peerId}:nope@127.0.0.1:0`) ?? 0
    down = listening.get(`${provider.peerId}:down@127.0.0.1:0`) ?? 0
    await Promise.all([
      event(consumer, 'tunnel.activated', e => e.tunnel === 'echo@127.0.0.1:0'),
      event(consumer, 'tunnel.activated', e => e.tunnel === `${provider.peerId}:echo@127.0.0.1:0`)
    ])
  })

  after(async () => {
    await Promise.all([consumer?.stop(), provider?.stop(), bootstrap?.stop()])
    await echo.close()
  })

  it('tunnels by name through the DHT: 1 MiB each way, byte-exact', async () => {
    const data = random(1024 * 1024)
    const echoed = await roundTrip(byName, data)
    assert.equal(echoed.length, data.length)
    assert.equal(sha256(echoed), sha256(data))
  })

  it('tunnels by peer id: 1 MiB each way, byte-exact', async () => {
    const data = random(1024 * 1024)
    const echoed = await roundTrip(byPeer, data)
    assert.equal(sha256(echoed), sha256(data))
  })

  it('a burst of 128 connections held open together: all reach the target at once, each echoed byte-exact', { timeout: 20_000 }, async () => {
    const count = 128
    const sockets = await Promise.all(Array.from({ length: count }, async () => connectTo(byPeer)))
    try {
      const payloads = sockets.map((_, i) => random(1000 + i))
      const echoed = await Promise.all(sockets.map(async (socket, i) => {
        const want = payloads[i]!.length
        const chunks: Buffer[] = []
        let got = 0
        const all = new Promise<void>((resolve, reject) => {
          socket.on('data', (chunk: Buffer) => {
            chunks.push(chunk)
            got += chunk.length
            if (got >= want) resolve()
          })
          socket.on('close', () => reject(new Error(`connection ${i} closed after ${got} of ${want} bytes`)))
        })
        socket.write(payloads[i]!)
        await all
        return Buffer.concat(chunks)
      }))
      assert.ok(echo.open() >= count, `all ${count} reached the target at once (${echo.open()} open)`)
      echoed.forEach((bytes, i) => assert.equal(sha256(bytes), sha256(payloads[i]!), `connection ${i}`))
    } finally {
      for (const socket of sockets) socket.destroy()
    }
  })

  it('half-close: the client shuts its write side and still receives the rest', async () => {
    const socket = await connectTo(byName)
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    const data = random(256 * 1024)
    socket.end(data)
    await once(socket, 'end')
    assert.equal(sha256(Buffer.concat(chunks)), sha256(data))
    socket.destroy()
  })

  it('rejects an unknown service with its reason, and the client connection is closed', async () => {
    const targetConnections = echo.connections()
    const rejected = event(consumer, 'tunnel.rejected', e => e.service === 'nope')
    const serverSide = event(provider, 'tunnel.rejected', e => e.service === 'nope')
    const echoed = await roundTrip(unknown, Buffer.from('hello')).catch(() => Buffer.alloc(0))
    assert.equal(echoed.length, 0)
    assert.equal((await rejected).reason, 'unknown-service')
    assert.equal((await serverSide).reason, 'unknown-service')
    assert.equal(echo.connections(), targetConnections, 'a rejected request never reaches a target')
  })

  it('rejects with target-unreachable when the exposed target is down', async () => {
    const rejected = event(consumer, 'tunnel.rejected', e => e.service === 'down')
    const echoed = await roundTrip(down, Buffer.from('hello')).catch(() => Buffer.alloc(0))
    assert.equal(echoed.length, 0)
    assert.equal((await rejected).reason, 'target-unreachable')
  })

  it('keeps the listener alive after failures: a later connection still works', async () => {
    await roundTrip(unknown, Buffer.from('x')).catch(() => {})
    const data = random(1000)
    assert.equal(sha256(await roundTrip(byPeer, data)), sha256(data))
  })
})
