/** In-process fixtures: real nodes on loopback, a TCP echo server, byte helpers. */
import { createServer, connect, type Server, type Socket } from 'node:net'
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import type { ComponentLogger, ConnectionEncrypter, PrivateKey, Stream } from '@libp2p/interface'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { tls } from '@libp2p/tls'
import { yamux } from '@chainsafe/libp2p-yamux'
import { once } from 'node:events'
import { randomBytes, createHash } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { startNode, type PunchgateNode, type StartOptions } from '../src/node.ts'
import { validateConfig, type RawConfig } from '../src/config.ts'
import { waitForEvent, type EventMap, type EventName } from '../src/events.ts'
import { silentLogger, type Logger } from '../src/logger.ts'

const LOOPBACK_LISTEN = ['/ip4/127.0.0.1/tcp/0']

export interface TestNodeOptions {
  /** A key made beforehand, so other nodes can be configured with this node's peer id. */
  privateKey?: PrivateKey
  /** Receives every record (after the console, when PUNCHGATE_TEST_LOG is set). */
  logger?: Logger
  /** Server-side handshake timeout, shorter than production's for hostile-peer tests. */
  handshakeTimeoutMs?: number
  /** Loopback counts as a dialable punch candidate (StartOptions.loopbackCandidates). */
  loopbackCandidates?: boolean
  /** StartOptions.reachTiming. */
  reachTiming?: StartOptions['reachTiming']
}

export async function testNode (raw: RawConfig = {}, options: TestNodeOptions = {}): Promise<PunchgateNode> {
  const config = validateConfig({ listen: LOOPBACK_LISTEN, ...raw })
  return startNode(config, {
    privateKey: options.privateKey ?? await generateKeyPair('Ed25519'),
    logger: options.logger ?? (process.env.PUNCHGATE_TEST_LOG != null ? consoleLogger : silentLogger),
    handshakeTimeoutMs: options.handshakeTimeoutMs,
    loopbackCandidates: options.loopbackCandidates,
    ...(options.reachTiming != null ? { reachTiming: options.reachTiming } : {}),
    timing: { retryMinMs: 100, retryMaxMs: 1000, bootstrapRetryMinMs: 100, bootstrapRetryMaxMs: 1000, bootstrapRetryOutOfMeshMaxMs: 1000, upgradeWaitMs: 500 }
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
  /** Connections open right now. */
  open: () => number
  close: () => Promise<void>
}

export async function echoServer (host = '127.0.0.1'): Promise<EchoServer> {
  let count = 0
  const service = await tcpService(socket => {
    count++
    socket.pipe(socket)
  }, host)
  return { ...service, connections: () => count }
}

/** A TCP service on a free port (half-open allowed); `close()` destroys its open connections. */
export interface TcpService {
  server: Server
  port: number
  /** Connections open right now. */
  open: () => number
  close: () => Promise<void>
}

/** Listens on `host`, port 0, and hands each accepted socket (errors already ignored) to `serve`. */
export async function tcpService (serve: (socket: Socket) => void, host = '127.0.0.1'): Promise<TcpService> {
  const sockets = new Set<Socket>()
  const server = createServer({ allowHalfOpen: true }, socket => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    serve(socket)
  })
  server.listen(0, host)
  await once(server, 'listening')
  const address = server.address()
  if (address == null || typeof address === 'string') throw new Error('no port')
  const close = async (): Promise<void> => {
    sockets.forEach(s => s.destroy())
    await new Promise<void>(resolve => server.close(() => resolve()))
  }
  return { server, port: address.port, open: () => sockets.size, close }
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

/** A UDP echo server on 127.0.0.1 that counts what it received. */
export interface UdpEchoServer {
  port: number
  /** Datagrams received so far. */
  received: () => number
  close: () => Promise<void>
}

export async function udpEchoServer (): Promise<UdpEchoServer> {
  const socket = createSocket('udp4')
  let received = 0
  socket.on('message', (msg, from) => {
    received++
    socket.send(msg, from.port, from.address)
  })
  socket.bind(0, '127.0.0.1')
  await once(socket, 'listening')
  return {
    port: socket.address().port,
    received: () => received,
    close: async () => new Promise<void>(resolve => socket.close(() => resolve()))
  }
}

/** A local UDP sender with its own port, collecting every datagram it gets back. */
export interface UdpClient {
  socket: UdpSocket
  port: number
  received: Buffer[]
  send: (data: Uint8Array) => void
  /** Resolves once `count` datagrams have been received in total. */
  waitFor: (count: number, ms?: number) => Promise<Buffer[]>
  close: () => void
}

export async function udpClient (target: number): Promise<UdpClient> {
  const socket = createSocket('udp4')
  const received: Buffer[] = []
  const waiters: Array<() => void> = []
  socket.on('message', msg => {
    received.push(msg)
    waiters.forEach(w => w())
  })
  socket.bind(0, '127.0.0.1')
  await once(socket, 'listening')
  return {
    socket,
    port: socket.address().port,
    received,
    send: data => socket.send(data, target, '127.0.0.1'),
    waitFor: async (count, ms = 10_000) => new Promise((resolve, reject) => {
      const check = (): void => {
        if (received.length < count) return
        clearTimeout(timer)
        waiters.splice(waiters.indexOf(check), 1)
        resolve(received.slice(0, count))
      }
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(check), 1)
        reject(new Error(`got ${received.length} of ${count} datagrams within ${ms} ms`))
      }, ms)
      waiters.push(check)
      check()
    }),
    close: () => socket.close()
  }
}

/** A logger that keeps every record, for events logged before a test can subscribe. */
export function recordingLogger (): Logger & { records: Array<Record<string, unknown>> } {
  const records: Array<Record<string, unknown>> = []
  const log = (o: Record<string, unknown>): void => { records.push(o) }
  return { records, debug: log, info: log, warn: log, error: log }
}

export function portOf (bind: string): number {
  return Number(/:(\d+)(?:\/udp)?$/.exec(bind)?.[1])
}

/**
 * Resolves once `condition` holds, checking on each turn of the event loop (or every
 * `everyMs`, for long waits that should not spin a core); rejects after `ms`.
 */
export async function until (condition: () => boolean, ms = 5_000, everyMs = 0): Promise<void> {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`)
    await new Promise(resolve => everyMs > 0 ? setTimeout(resolve, everyMs) : setImmediate(resolve))
  }
}

/**
 * Resolves with what `read()` reports once it stops growing (a sender held back emits no
 * event to wait for, hence the polling), or reaches `max`.
 */
export async function plateau (read: () => number, max: number): Promise<number> {
  let last = -1
  let still = 0
  for (let i = 0; i < 200 && still < 5; i++) {
    await new Promise(resolve => setTimeout(resolve, 100))
    const now = read()
    still = now === last || now >= max ? still + 1 : 0
    last = now
  }
  return last
}

/** The protocol of `echoPeer`'s handler: every message sent back, FIN answered with FIN. */
export const ECHO = '/test/echo/1.0.0'

/** A bare libp2p peer (TCP, `encrypter`, yamux) that echoes ECHO streams. */
export async function echoPeer (encrypter: (components: any) => ConnectionEncrypter, listen: boolean, logger?: ComponentLogger): Promise<Libp2p> {
  const peer = await createLibp2p({
    addresses: { listen: listen ? LOOPBACK_LISTEN : [] },
    transports: [tcp()],
    connectionEncrypters: [encrypter],
    streamMuxers: [yamux()],
    ...(logger != null ? { logger } : {})
  })
  await peer.handle(ECHO, (stream: Stream) => {
    stream.addEventListener('message', evt => { stream.send(evt.data) })
    stream.addEventListener('remoteCloseWrite', () => { void stream.close() })
  })
  return peer
}

/** A bare libp2p node on loopback (TCP, TLS, yamux): a peer for protocol tests, with no Punchgate in it. */
export async function plainNode (): Promise<Libp2p> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [tls()],
    streamMuxers: [yamux()]
  })
}

/** The bare peer's loopback listening address, as a candidate. */
export function candidateOf (peer: Libp2p): string {
  const addr = peer.getMultiaddrs().find(a => a.toString().startsWith('/ip4/127.0.0.1/tcp/'))
  if (addr == null) throw new Error('bare peer has no loopback address')
  return addr.decapsulate('/p2p').toString()
}
