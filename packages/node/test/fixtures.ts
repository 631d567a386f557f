/** In-process fixtures: real nodes on loopback, a TCP echo server, byte helpers. */
import { createServer, connect, type Server, type Socket } from 'node:net'
import { once } from 'node:events'
import { randomBytes, createHash } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { startNode, type PunchgateNode } from '../src/node.ts'
import { validateConfig, type RawConfig } from '../src/config.ts'
import { waitForEvent, type EventMap, type EventName } from '../src/events.ts'
import { silentLogger } from '../src/logger.ts'

const LOOPBACK_LISTEN = ['/ip4/127.0.0.1/tcp/0']

export async function testNode (raw: RawConfig = {}): Promise<PunchgateNode> {
  const config = validateConfig({ listen: LOOPBACK_LISTEN, ...raw })
  return startNode(config, {
    privateKey: await generateKeyPair('Ed25519'),
    logger: process.env.PUNCHGATE_TEST_LOG != null ? consoleLogger : silentLogger,
    timing: { retryMinMs: 100, retryMaxMs: 1000, bootstrapRetryMinMs: 100, bootstrapRetryMaxMs: 1000, upgradeWaitMs: 500 }
  })
}

const consoleLogger = {
  debug: (o: object) => console.error(JSON.stringify(o)),
  info: (o: object) => console.error(JSON.stringify(o)),
  warn: (o: object) => console.error(JSON.stringify(o)),
  error: (o: object) => console.error(JSON.stringify(o))
}

export function tcpAddr (node: PunchgateNode): string {
  const addr = node.addrs().find(a => a.includes('/tcp/') && !a.includes('p2p-circuit'))
  if (addr == null) throw new Error('node has no TCP address')
  return addr
}

export async function event<K extends EventName> (
  node: PunchgateNode, name: K, match?: (fields: EventMap[K]) => boolean, ms = 20_000
): Promise<EventMap[K]> {
  return waitForEvent(node.events, name, match, AbortSignal.timeout(ms))
}

/** A TCP echo server that half-closes when its client does. */
export interface EchoServer {
  server: Server
  port: number
  /** Connections accepted so far. */
  connections: () => number
  close: () => Promise<void>
}

export async function echoServer (): Promise<EchoServer> {
  let count = 0
  const sockets = new Set<Socket>()
  const server = createServer({ allowHalfOpen: true }, socket => {
    count++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    socket.pipe(socket)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  if (address == null || typeof address === 'string') throw new Error('no port')
  const close = async (): Promise<void> => {
    sockets.forEach(s => s.destroy())
    await new Promise<void>(resolve => server.close(() => resolve()))
  }
  return { server, port: address.port, connections: () => count, close }
}

export async function connectTo (port: number): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true })
  await once(socket, 'connect')
  return socket
}

/** Writes `data`, half-closes, and collects everything until the remote's FIN. */
export async function roundTrip (port: number, data: Uint8Array): Promise<Buffer> {
  const socket = await connectTo(port)
  const chunks: Buffer[] = []
  socket.on('data', (chunk: Buffer) => chunks.push(chunk))
  const ended = once(socket, 'end')
  socket.end(data)
  await ended
  socket.destroy()
  return Buffer.concat(chunks)
}

export function random (bytes: number): Buffer {
  return randomBytes(bytes)
}

export function sha256 (data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}
