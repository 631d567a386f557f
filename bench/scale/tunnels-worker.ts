/**
 * A worker process of the scale bench holding relayed tunnel pairs: for each, a private
 * provider exposing a sink and a private consumer with a tunnel to it, both real Punchgate
 * nodes (the library's startNode, as the daemon runs it) that do not listen, so they meet
 * only through the public node, and spliced there (docs/splice.md). Driven over IPC:
 *   { type: 'start', relay, from, count, startGapMs, offsetMs }  start the pairs, wait for their splices
 *   { type: 'pump', seconds, bytesPerSecond }                     one connection per tunnel at that rate
 *   { type: 'stop' }
 */
import { createServer, connect, type Server, type Socket } from 'node:net'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { startNode, validateConfig, waitForEvent, type PunchgateNode } from '@punchgate/node'
import { fileLogger, lagMonitor } from './worker-log.ts'

export type TunnelsRequest =
  | { type: 'start', relay: string, from: number, count: number, startGapMs: number, offsetMs: number, log: string }
  | { type: 'pump', seconds: number, bytesPerSecond: number }
  | { type: 'stop' }

export interface StartResult { type: 'started', ready: number, errors: string[], maxLagMs: number }
export interface PumpResult {
  type: 'pumped'
  sent: number
  received: number
  /** Bytes each tunnel's target received per second of the pump. */
  perTunnel: number[]
  errors: string[]
  /** This worker's largest event-loop delay during the pump, in ms (libp2p cuts a connection whose ping takes 5 s). */
  maxLagMs: number
}

const READY_MS = 120_000
const CHUNK_MS = 50

interface Pair { provider: PunchgateNode, consumer: PunchgateNode, port: number }

const pairs: Pair[] = []
const lag = lagMonitor()
let sink: Server | undefined
let sinkPort = 0
/** Bytes the sink received per connection, by the first 8 bytes each connection sends (its tunnel index). */
const received = new Map<number, { bytes: number, ended: Promise<void> }>()

async function startSink (): Promise<void> {
  sink = createServer(socket => {
    let head = Buffer.alloc(0)
    let entry: { bytes: number, ended: Promise<void> } | undefined
    let resolveEnded: () => void = () => {}
    const ended = new Promise<void>(resolve => { resolveEnded = resolve })
    socket.on('data', (chunk: Buffer) => {
      if (entry != null) {
        entry.bytes += chunk.byteLength
        return
      }
      head = Buffer.concat([head, chunk])
      if (head.byteLength < 8) return
      entry = { bytes: head.byteLength, ended }
      received.set(Number(head.readBigUInt64BE(0)), entry)
    })
    socket.on('end', () => socket.end())
    socket.on('close', () => resolveEnded())
    socket.on('error', () => {})
  })
  sink.listen(0, '127.0.0.1')
  await once(sink, 'listening')
  sinkPort = (sink.address() as { port: number }).port
}

async function startPair (relay: string, index: number, log: string): Promise<Pair> {
  const providerKey = await generateKeyPair('Ed25519')
  const consumerKey = await generateKeyPair('Ed25519')
  const providerId = peerIdFromPrivateKey(providerKey).toString()
  const consumerId = peerIdFromPrivateKey(consumerKey).toString()
  const provider = await startNode(validateConfig({
    listen: ['none'], bootstrap: [relay], expose: [`sink=127.0.0.1:${sinkPort}?allow=${consumerId}`], portMapping: false
  }), { privateKey: providerKey, logger: fileLogger(log, 2 * index) })
  const signal = AbortSignal.timeout(READY_MS)
  // As the bench's daemons do (bench/setups.ts): the consumer starts once the service is published.
  await Promise.all([
    waitForEvent(provider.events, 'relay.reserved', () => true, signal),
    waitForEvent(provider.events, 'service.published', () => true, signal)
  ])
  const consumer = await startNode(validateConfig({
    listen: ['none'], bootstrap: [relay], tunnel: [`${providerId}:sink@127.0.0.1:0`], portMapping: false
  }), { privateKey: consumerKey, logger: fileLogger(log, 2 * index + 1) })
  const port = Number(consumer.tunnels()[0]?.bind.split(':').pop())
  const [activated] = await Promise.all([
    waitForEvent(consumer.events, 'tunnel.activated', () => true, signal),
    // Connections opened before the splice would stay on the circuit: measure the splice.
    waitForEvent(consumer.events, 'splice.opened', e => e.peer === providerId, signal)
  ])
  if (activated.path !== 'relay') throw new Error(`tunnel ${index} went live on path ${activated.path}`)
  return { provider, consumer, port }
}

async function start (relay: string, from: number, count: number, gapMs: number, offsetMs: number, log: string): Promise<StartResult> {
  if (sink == null) await startSink()
  const errors: string[] = []
  await sleep(offsetMs)
  // Spaced: libp2p takes 5 new connections a second from one IP, and these all come from 127.0.0.1.
  await Promise.all(Array.from({ length: count }, async (_, i) => {
    await sleep(i * gapMs)
    try {
      pairs.push(await startPair(relay, from + i, log))
    } catch (err) {
      errors.push(`pair ${from + i}: ${(err as Error).message}`)
    }
  }))
  return { type: 'started', ready: pairs.length, errors, maxLagMs: lag() }
}

/** One connection through `port` sending `bytesPerSecond` for `seconds` (paced every 50 ms), then ending. */
async function pumpOne (port: number, id: number, seconds: number, bytesPerSecond: number): Promise<number> {
  const socket: Socket = connect({ port, host: '127.0.0.1' })
  socket.setNoDelay(true)
  await once(socket, 'connect')
  const header = Buffer.alloc(8)
  header.writeBigUInt64BE(BigInt(id))
  socket.write(header)
  let sent = 8
  const total = Math.floor(bytesPerSecond * seconds)
  const started = Date.now()
  const failure = new Promise<never>((_, reject) => socket.once('error', reject))
  failure.catch(() => {})
  while (sent < total) {
    const due = Math.min(total, Math.floor(bytesPerSecond * (Date.now() - started) / 1000)) - sent
    if (due > 0) {
      const ok = socket.write(Buffer.allocUnsafe(due))
      sent += due
      if (!ok) await Promise.race([once(socket, 'drain'), failure])
    }
    await Promise.race([sleep(CHUNK_MS), failure])
  }
  socket.end()
  await Promise.race([once(socket, 'close'), failure])
  return sent
}

async function pump (seconds: number, bytesPerSecond: number): Promise<PumpResult> {
  received.clear()
  lag()
  const errors: string[] = []
  const started = Date.now()
  const sent = await Promise.all(pairs.map(async (pair, i) => pumpOne(pair.port, i, seconds, bytesPerSecond).catch((err: Error) => {
    errors.push(`tunnel ${i}: ${err.message}`)
    return 0
  })))
  // Every target connection closed, or 10 s more: what arrived by then is what arrived.
  await Promise.race([Promise.all([...received.values()].map(async r => r.ended)), sleep(10_000)])
  const elapsed = (Date.now() - started) / 1000
  const perTunnel = pairs.map((_, i) => (received.get(i)?.bytes ?? 0) / elapsed)
  pairs.forEach((_, i) => {
    const got = received.get(i)?.bytes ?? 0
    if (got !== sent[i] && sent[i] !== 0) errors.push(`tunnel ${i}: sent ${sent[i]} bytes, the target got ${got}`)
  })
  return {
    type: 'pumped',
    sent: sent.reduce((a, b) => a + b, 0),
    received: [...received.values()].reduce((a, r) => a + r.bytes, 0),
    perTunnel,
    errors,
    maxLagMs: lag()
  }
}

process.on('message', (request: TunnelsRequest) => {
  void (async () => {
    switch (request.type) {
      case 'start':
        process.send?.(await start(request.relay, request.from, request.count, request.startGapMs, request.offsetMs, request.log))
        break
      case 'pump':
        process.send?.(await pump(request.seconds, request.bytesPerSecond))
        break
      case 'stop':
        await Promise.all(pairs.flatMap(p => [p.consumer.stop({ drainMs: 0 }), p.provider.stop({ drainMs: 0 })]).map(async s => s.catch(() => {})))
        sink?.close()
        process.exit(0)
    }
  })()
})
process.on('disconnect', () => process.exit(0))
