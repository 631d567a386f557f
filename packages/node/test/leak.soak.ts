/**
 * Leak soak: 20,000 short tunnelled connections through one tunnel (two nodes in this
 * process, a local echo target). Afterwards the process's file descriptors, the libp2p
 * streams on the tunnel's connection and the tunnel's open connections are back to where
 * they were after warm-up, and RSS and the live heap have grown by less than their limits.
 *
 * Not part of the unit tests (it takes most of a minute): `npm run test:leak`.
 * PUNCHGATE_LEAK_CONNECTIONS overrides the count.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { TUNNEL_PROTOCOL, type PunchgateNode } from '../src/index.ts'
import { echoServer, event, portOf, random, roundTrip, tcpAddr, testNode, until, type EchoServer } from './fixtures.ts'

const CONNECTIONS = Number(process.env.PUNCHGATE_LEAK_CONNECTIONS ?? 20_000)
const CONCURRENCY = 50
/**
 * Under this load V8 grows its heap reservation (heapTotal) by ~70 MB and native memory by
 * ~60 MB during the first few thousand connections, then holds: the baseline is taken after.
 */
const WARMUP = 5_000
/**
 * Measured here from 10,000 to 70,000 connections: RSS crept ~0.36 KiB per connection
 * with the live heap flat, in allocator steps of up to ~28 MB (also with MALLOC_ARENA_MAX=1).
 * Over 10,000 connections the growth ranged from -2 to 59 MB in CI runs of 2026-11-30, so
 * one step can take most of a 50 MB limit. The limit is 5 KiB per connection: over
 * 20,000, room for a step of ~60 MB, and a native leak of 5 KiB per connection passes it.
 * Never below 50 MB, so a shorter run (PUNCHGATE_LEAK_CONNECTIONS) still has room for a step.
 */
const RSS_GROWTH_LIMIT = Math.max(50 * 1024 * 1024, CONNECTIONS * 5 * 1024)
/** Live JS objects after a full GC; a leak of 1 KiB per connection would pass 10 MB. */
const HEAP_GROWTH_LIMIT = 10 * 1024 * 1024

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const openFds = (): number => readdirSync('/proc/self/fd').length

interface Snapshot {
  fds: number
  rss: number
  heapUsed: number
  heapTotal: number
  /** Streams on the consumer's and the provider's connection to each other, any protocol. */
  streams: number
  tunnelStreams: number
  /** Connections open on the consumer's tunnel listener and at the echo target. */
  tunnelConnections: number
  targetConnections: number
}

function streamsBetween (a: PunchgateNode, b: PunchgateNode): Array<{ protocol?: string }> {
  return a.swarm.getConnections().filter(c => c.remotePeer.toString() === b.peerId).flatMap(c => c.streams)
}

function snapshot (consumer: PunchgateNode, provider: PunchgateNode, echo: EchoServer): Snapshot {
  gc()
  gc()
  const all = [...streamsBetween(consumer, provider), ...streamsBetween(provider, consumer)]
  return {
    fds: openFds(),
    rss: process.memoryUsage.rss(),
    heapUsed: process.memoryUsage().heapUsed,
    heapTotal: process.memoryUsage().heapTotal,
    streams: all.length,
    tunnelStreams: all.filter(s => s.protocol === TUNNEL_PROTOCOL).length,
    tunnelConnections: consumer.tunnels()[0]?.connections ?? -1,
    targetConnections: echo.open()
  }
}

/**
 * `count` short connections, CONCURRENCY at a time: a few bytes each, echoed byte-exact,
 * then closed. Returns what went wrong, so a failure can say what the nodes logged.
 */
async function shortConnections (port: number, count: number): Promise<string[]> {
  const failures: string[] = []
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < count) {
      const n = ++next
      const data = random(8 + (n % 57))
      try {
        const echoed = await roundTrip(port, data)
        if (!echoed.equals(data)) failures.push(`connection ${n}: echo of ${echoed.length} bytes differs from ${data.length} sent`)
      } catch (err) {
        failures.push(`connection ${n}: ${(err as Error).message}`)
      }
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  return failures
}

/** Everything the nodes report as going wrong with a tunnelled connection. */
function recordTrouble (nodes: PunchgateNode[]): string[] {
  const trouble: string[] = []
  for (const node of nodes) {
    node.events.onEvent('tunnel.rejected', f => trouble.push(`tunnel.rejected ${JSON.stringify(f)}`))
    node.events.onEvent('tunnel.closed', f => { if (f.error != null) trouble.push(`tunnel.closed ${JSON.stringify(f)}`) })
    node.events.onEvent('tunnel.connect-failed', f => trouble.push(`tunnel.connect-failed ${JSON.stringify(f)}`))
    node.events.onEvent('tunnel.deactivated', f => trouble.push(`tunnel.deactivated ${JSON.stringify(f)}`))
  }
  return trouble
}

const MiB = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`

describe('leaks', () => {
  it(`${CONNECTIONS} short tunnelled connections leave no descriptors, streams or memory behind`, async (t) => {
    const echo = await echoServer()
    const provider = await testNode({ allowAny: true, expose: [`echo=127.0.0.1:${echo.port}`] })
    const consumer = await testNode({ bootstrap: [tcpAddr(provider)], tunnel: [`${provider.peerId}:echo@127.0.0.1:0`] })
    try {
      await event(consumer, 'tunnel.activated')
      const trouble = recordTrouble([consumer, provider])
      const port = portOf(consumer.tunnels()[0]?.bind ?? '')
      const idle = (): boolean =>
        consumer.tunnels()[0]?.connections === 0 && echo.open() === 0 &&
        [...streamsBetween(consumer, provider), ...streamsBetween(provider, consumer)].every(s => s.protocol !== TUNNEL_PROTOCOL)

      const warmupFailures = await shortConnections(port, WARMUP)
      assert.deepEqual([...warmupFailures, ...trouble], [], 'warm-up')
      await until(idle, 10_000, 50)
      const before = snapshot(consumer, provider, echo)

      const started = Date.now()
      const failures = await shortConnections(port, CONNECTIONS)
      const ms = Date.now() - started
      assert.deepEqual([...failures.slice(0, 10), ...trouble.slice(0, 10)], [], `${failures.length} connections failed`)
      await until(idle, 10_000, 50)
      // Sockets are released as their close events run: wait for the count, with a deadline.
      await until(() => openFds() <= before.fds, 10_000, 50)
      const after = snapshot(consumer, provider, echo)

      t.diagnostic(`${CONNECTIONS} connections in ${ms} ms (${Math.round(CONNECTIONS / (ms / 1000))}/s, ${CONCURRENCY} at a time)`)
      t.diagnostic(`fds ${before.fds} -> ${after.fds}; streams ${before.streams} -> ${after.streams} (tunnel ${before.tunnelStreams} -> ${after.tunnelStreams})`)
      t.diagnostic(`rss ${MiB(before.rss)} -> ${MiB(after.rss)} (${MiB(after.rss - before.rss)}); heap used ${MiB(before.heapUsed)} -> ${MiB(after.heapUsed)}, reserved ${MiB(before.heapTotal)} -> ${MiB(after.heapTotal)}`)

      assert.ok(after.fds <= before.fds, `file descriptors: ${before.fds} before, ${after.fds} after`)
      assert.equal(after.tunnelStreams, 0, 'no tunnel stream left open on the connection')
      assert.ok(after.streams <= before.streams, `streams on the connection: ${before.streams} before, ${after.streams} after`)
      assert.equal(after.tunnelConnections, 0)
      assert.equal(after.targetConnections, 0)
      assert.ok(after.rss - before.rss < RSS_GROWTH_LIMIT, `RSS grew by ${MiB(after.rss - before.rss)}`)
      assert.ok(after.heapUsed - before.heapUsed < HEAP_GROWTH_LIMIT, `heap grew by ${MiB(after.heapUsed - before.heapUsed)}`)
      assert.equal(echo.connections(), WARMUP + CONNECTIONS, 'every connection reached the target once')
    } finally {
      await Promise.all([consumer.stop({ drainMs: 0 }), provider.stop({ drainMs: 0 })])
      await echo.close()
    }
  })
})
