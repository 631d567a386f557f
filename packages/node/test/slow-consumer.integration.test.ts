/**
 * A local app that reads slowly (or not at all for a while) behind a tunnel: the
 * backpressure must reach the service at the far end instead of piling up in the
 * daemons, and the stream must survive the pause.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { PunchgateNode } from '../src/node.ts'
import type { Path } from '../src/events.ts'
import { connectTo, event, plateau, random, tcpService, testNode, type TcpService } from './fixtures.ts'

const BLOCK = random(1024 * 1024)
const TOTAL = 128 * 1024 * 1024

/** A service that sends TOTAL bytes (BLOCK repeated) as fast as its socket takes them. */
async function firehose (): Promise<TcpService & { sent: () => number }> {
  let sent = 0
  const service = await tcpService(socket => {
    const pump = (): void => {
      while (sent < TOTAL && !socket.destroyed) {
        sent += BLOCK.byteLength
        if (!socket.write(BLOCK)) { socket.once('drain', pump); return }
      }
      if (sent >= TOTAL) socket.end()
    }
    pump()
  })
  return { ...service, sent: () => sent }
}

function expectedDigest (): string {
  const hash = createHash('sha256')
  for (let i = 0; i < TOTAL; i += BLOCK.byteLength) hash.update(BLOCK)
  return hash.digest('hex')
}

/**
 * `circuit` and `splice`: neither end listens, so the tunnel can only run through the
 * bootstrap as relay; over its circuit (splicing off), or over a splice (docs/splice.md).
 */
type Relayed = 'circuit' | 'splice' | undefined

async function tunnelOver (listen: string[], relayed?: Relayed): Promise<{ nodes: PunchgateNode[], port: number, path: Path, source: Awaited<ReturnType<typeof firehose>> }> {
  const source = await firehose()
  const bootstrap = await testNode({ listen, ...(relayed === 'circuit' ? { relaySplice: 'off' } : {}) })
  const boot = bootstrap.addrs()[0] ?? ''
  const ends = relayed != null ? ['none'] : listen
  const provider = await testNode({ listen: ends, bootstrap: [boot], allowAny: true, expose: [`data=127.0.0.1:${source.port}`] })
  await event(provider, 'service.published')
  const consumer = await testNode({ listen: ends, bootstrap: [boot], tunnel: [`${provider.peerId}:data@127.0.0.1:0`] })
  const spliced = relayed === 'splice' ? event(consumer, 'splice.opened') : undefined
  const { path } = await event(consumer, 'tunnel.activated')
  await spliced
  const bind = consumer.tunnels()[0]?.bind ?? ''
  return { nodes: [consumer, provider, bootstrap], port: Number(bind.slice(bind.lastIndexOf(':') + 1)), path, source }
}

describe('a slow local reader behind a tunnel', () => {
  // QUIC reads only while the stream is not paused thanks to patches/ (without it,
  // @chainsafe/libp2p-quic 2.1 read everything and the stream was reset at 32 MiB).
  // Relayed: the relay reads its two streams as fast as they come; the inner connection's
  // flow control (yamux windows between the two ends) must hold the far service back.
  // Spliced: the relay copies between two sockets with pipe(), which pauses one when the
  // other's kernel buffer is full.
  const transports: Array<[string, string, Relayed]> = [
    ['TCP', '/ip4/127.0.0.1/tcp/0', undefined],
    ['QUIC', '/ip4/127.0.0.1/udp/0/quic-v1', undefined],
    ['a circuit relay (TCP)', '/ip4/127.0.0.1/tcp/0', 'circuit'],
    ['a splice relay', '/ip4/127.0.0.1/tcp/0', 'splice']
  ]
  for (const [name, listen, relayed] of transports) {
    it(`over ${name}: the far service is held back, nothing is reset, every byte arrives in order`, { timeout: 120_000 }, async () => {
      const { nodes, port, path, source } = await tunnelOver([listen], relayed)
      try {
        assert.equal(path, relayed != null ? 'relay' : 'direct')
        const client = await connectTo(port)
        client.pause()
        const held = await plateau(source.sent, TOTAL)
        // Kernel socket buffers on four sockets, one stream window (4 MiB for yamux) and
        // the pipe's own limits fit well within this; without backpressure all 128 MiB
        // would be sent.
        assert.ok(held < 64 * 1024 * 1024, `the service sent ${held} bytes to a reader that read none`)

        const hash = createHash('sha256')
        let received = 0
        client.on('data', (chunk: Buffer) => { hash.update(chunk); received += chunk.byteLength })
        const ended = once(client, 'end')
        client.resume()
        await ended
        client.destroy()
        assert.equal(received, TOTAL)
        assert.equal(hash.digest('hex'), expectedDigest())
      } finally {
        await Promise.all(nodes.map(async n => n.stop()))
        await source.close()
      }
    })
  }

  // Each resume hands the pipe what arrived while paused, often more than it lets the local
  // socket hold, so it pauses again at once. That pause once came before the window grant
  // of the resume it was nested in: the grant won, the sender ran free and the stream was
  // reset at its 32 MiB read buffer limit (a NAT lab run; pipe.ts).
  it('over TCP: a reader that stops and starts many times is held back without a reset', { timeout: 120_000 }, async () => {
    const { nodes, port, source } = await tunnelOver(['/ip4/127.0.0.1/tcp/0'])
    try {
      const client = await connectTo(port)
      const hash = createHash('sha256')
      let received = 0
      let closedEarly = false
      client.on('data', (chunk: Buffer) => { hash.update(chunk); received += chunk.byteLength })
      client.on('close', () => { closedEarly = received < TOTAL })
      const ended = once(client, 'end')
      while (received < TOTAL && !closedEarly) {
        client.pause()
        await sleep(20)
        client.resume()
        await sleep(2)
      }
      await ended
      client.destroy()
      assert.equal(closedEarly, false, `the tunnel closed after ${received} of ${TOTAL} bytes`)
      assert.equal(hash.digest('hex'), expectedDigest())
    } finally {
      await Promise.all(nodes.map(async n => n.stop()))
      await source.close()
    }
  })
})
