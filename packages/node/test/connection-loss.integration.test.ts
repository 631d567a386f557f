/**
 * A peer connection that dies under a tunnel mid-transfer: every tunnelled connection on
 * it must end at once for the local app, as an error, never hang half-open with the
 * sender stalled. Both ways a connection goes: aborted (a ping timeout, a reset), and
 * closed cleanly (a relay ending a circuit, a peer shutting down).
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import type { Socket } from 'node:net'
import type { PunchgateNode } from '../src/node.ts'
import { connectTo, event, portOf, random, tcpAddr, tcpService, testNode, until, type TcpService } from './fixtures.ts'

const BLOCK = random(256 * 1024)
/** Longer than any cut takes to reach the local app (about 1 s here), far shorter than a hang. */
const HANG_MS = 8_000

/** A service that reads and discards everything, and never ends its side. */
async function blackHole (): Promise<TcpService & { received: () => number, ends: () => number, closed: () => number }> {
  let received = 0
  let ends = 0
  let closed = 0
  const service = await tcpService(socket => {
    socket.on('data', (chunk: Buffer) => { received += chunk.byteLength })
    socket.on('end', () => { ends++ })
    socket.on('close', () => { closed++ })
  })
  return { ...service, received: () => received, ends: () => ends, closed: () => closed }
}

/** Writes BLOCK after BLOCK until the socket closes; resolves how it closed. */
async function sendUntilClosed (socket: Socket): Promise<{ hadError: boolean }> {
  socket.on('error', () => {})
  const pump = (): void => {
    while (!socket.destroyed && socket.write(BLOCK)) { /* keep the socket full */ }
    if (!socket.destroyed) socket.once('drain', pump)
  }
  pump()
  // Not events.once(): it would reject on the 'error' that comes before 'close'.
  return new Promise(resolve => socket.once('close', hadError => resolve({ hadError })))
}

interface Mesh {
  relay: PunchgateNode
  provider: PunchgateNode
  consumer: PunchgateNode
  port: number
}

async function mesh (sink: number, relayed: boolean): Promise<Mesh> {
  const relay = await testNode()
  const boot = tcpAddr(relay)
  const provider = await testNode({
    bootstrap: [boot],
    allowAny: true,
    expose: [`sink=127.0.0.1:${sink}`],
    // Reachable through the relay only: the consumer cannot dial it directly.
    ...(relayed ? { listen: ['none'] } : {})
  })
  const consumer = await testNode({ bootstrap: [boot], tunnel: [`${provider.peerId}:sink@127.0.0.1:0`] })
  await event(consumer, 'tunnel.activated')
  const [tunnel] = consumer.tunnels()
  if (tunnel == null) throw new Error('no tunnel')
  return { relay, provider, consumer, port: portOf(tunnel.bind) }
}

/** Starts a transfer, cuts the connection it runs on, and times how long the local app waits. */
async function cutMidTransfer (m: Mesh, sink: { received: () => number }, cut: () => Promise<void>): Promise<{ hadError: boolean, ms: number }> {
  const before = sink.received()
  const client = await connectTo(m.port)
  const closed = sendUntilClosed(client)
  // Bytes are flowing end to end before the cut.
  await until(() => sink.received() - before >= 4 * BLOCK.byteLength, 5_000, 10)
  const started = Date.now()
  await cut()
  let hung = false
  const timeout = setTimeout(() => { hung = true; client.destroy() }, HANG_MS)
  const { hadError } = await closed
  clearTimeout(timeout)
  assert.equal(hung, false, `the local connection was still open ${HANG_MS} ms after the cut`)
  return { hadError, ms: Date.now() - started }
}

for (const relayed of [false, true]) {
  describe(`a ${relayed ? 'relayed' : 'direct'} tunnel whose peer connection goes away mid-transfer`, () => {
    let sink: Awaited<ReturnType<typeof blackHole>>
    before(async () => { sink = await blackHole() })
    after(async () => sink.close())

    for (const how of ['abort', 'close'] as const) {
      it(`ends the local connection with an error when the connection is ${how === 'abort' ? 'aborted' : 'closed'}`, async () => {
        const m = await mesh(sink.port, relayed)
        const [endsBefore, closedBefore] = [sink.ends(), sink.closed()]
        try {
          // The connection the tunnel rides on: to the provider directly, or the consumer's
          // to the relay, which carries the circuit.
          const far = relayed ? m.relay : m.provider
          const result = await cutMidTransfer(m, sink, async () => {
            const connections = far.swarm.getConnections(m.consumer.swarm.peerId)
            assert.ok(connections.length > 0)
            await Promise.all(connections.map(async c => how === 'abort' ? c.abort(new Error('cut by the test')) : c.close()))
          })
          assert.equal(result.hadError, true, 'a cut transfer must not look complete to the local app')
          // And not to the service either: its connection is reset, not ended.
          await until(() => sink.closed() > closedBefore || sink.ends() > endsBefore, 5_000, 20)
          assert.equal(sink.ends(), endsBefore, 'the service saw a clean end of a cut transfer')
        } finally {
          await Promise.all([m.consumer.stop({ drainMs: 0 }), m.provider.stop({ drainMs: 0 }), m.relay.stop({ drainMs: 0 })])
        }
      })
    }
  })
}
