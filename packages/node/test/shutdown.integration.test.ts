/**
 * Graceful stop: the stopping consumer takes no new connections, an open tunnelled
 * connection finishes byte-exact within the drain time, and with no drain time it is cut.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { connectTo, echoServer, event, portOf, random, sha256, tcpAddr, testNode, until } from './fixtures.ts'

async function threePeers (): Promise<{ port: number, stopAll: () => Promise<void>, consumer: Awaited<ReturnType<typeof testNode>> }> {
  const echo = await echoServer()
  const bootstrap = await testNode()
  const provider = await testNode({ bootstrap: [tcpAddr(bootstrap)], allowAny: true, expose: [`echo=127.0.0.1:${echo.port}`] })
  const consumer = await testNode({ bootstrap: [tcpAddr(bootstrap)], tunnel: [`${provider.peerId}:echo@127.0.0.1:0`] })
  await event(consumer, 'tunnel.activated')
  const port = portOf(consumer.tunnels()[0]?.bind ?? '')
  return {
    port,
    consumer,
    stopAll: async () => { await Promise.all([consumer.stop({ drainMs: 0 }), provider.stop({ drainMs: 0 }), bootstrap.stop({ drainMs: 0 })]); await echo.close() }
  }
}

/** Collects what the socket receives until it closes; resolves with the bytes and whether it was reset. */
async function collect (socket: Socket): Promise<{ data: Buffer, error: boolean }> {
  const chunks: Buffer[] = []
  let error = false
  socket.on('data', d => chunks.push(d))
  socket.on('error', () => { error = true })
  // Not events.once(): it rejects on 'error', and a reset is an outcome here.
  await new Promise(resolve => socket.on('close', resolve))
  return { data: Buffer.concat(chunks), error }
}

describe('graceful stop', () => {
  it('lets an open connection finish byte-exact, refuses new ones, and returns once it is done', async () => {
    const { port, consumer, stopAll } = await threePeers()
    try {
      const first = random(256 * 1024)
      const second = random(256 * 1024)
      const socket = await connectTo(port)
      const received = collect(socket)
      socket.write(first)

      const stopped = consumer.stop({ drainMs: 10_000 })
      await event(consumer, 'node.draining')
      const refused = connect(port, '127.0.0.1')
      const [err] = await once(refused, 'error') as [NodeJS.ErrnoException]
      assert.equal(err.code, 'ECONNREFUSED', 'the tunnel port takes no new connections')

      socket.end(second)
      const { data, error } = await received
      assert.equal(error, false)
      assert.equal(sha256(data), sha256(Buffer.concat([first, second])))
      const started = Date.now()
      await stopped
      assert.ok(Date.now() - started < 5_000, 'stop returns when the last connection is done, not at the deadline')
    } finally {
      await stopAll()
    }
  })

  it('cuts open connections when there is no time to drain', async () => {
    const { port, consumer, stopAll } = await threePeers()
    try {
      const socket = await connectTo(port)
      const received = collect(socket)
      socket.write(random(1024))
      // The client's connect can come before the consumer's accept: stop only once it holds the connection.
      await until(() => consumer.tunnels().some(t => t.connections === 1))
      const drained = event(consumer, 'node.drained')
      await consumer.stop({ drainMs: 0 })
      assert.equal((await drained).cut, 1)
      assert.equal((await received).error, true, 'a cut connection is reset, not ended: the app must not take it for complete')
      assert.equal(socket.destroyed, true)
    } finally {
      await stopAll()
    }
  })
})
