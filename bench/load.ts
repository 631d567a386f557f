/**
 * Load generators: each drives one kind of traffic at a TCP port that leads (directly
 * or through a tunnel) to bench/target.ts, checks what comes back, and reports times.
 * They throw on any wrong byte count, reset or timeout: a fast wrong answer is no answer.
 */
import { connect, type Socket } from 'node:net'
import { randomBytes } from 'node:crypto'
import { MODE_ECHO, MODE_SINK } from './target.ts'

/** Reused for every write: the generator must not be the thing being measured. */
const CHUNK = randomBytes(256 * 1024)

function now (): number {
  return Number(process.hrtime.bigint()) / 1e6
}

async function open (port: number, signal?: AbortSignal): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port, noDelay: true, allowHalfOpen: true })
  // Every wait below goes through until(), which reports errors; this only keeps an
  // error between two waits from crashing the bench.
  socket.on('error', () => {})
  await until(socket, 'connect', signal)
  return socket
}

/** Resolves on `event`; rejects if the socket fails or closes first, or on abort. */
async function until (socket: Socket, event: 'connect' | 'drain' | 'end' | 'data', signal?: AbortSignal): Promise<void> {
  if (socket.destroyed) throw new Error(socket.errored?.message ?? 'connection closed')
  return new Promise((resolve, reject) => {
    const settle = (err?: Error): void => {
      socket.off(event, ok)
      socket.off('error', settle)
      socket.off('close', closed)
      signal?.removeEventListener('abort', aborted)
      if (err == null) resolve()
      else reject(err)
    }
    const ok = (): void => settle()
    const closed = (): void => settle(new Error('connection closed'))
    const aborted = (): void => settle(signal?.reason as Error)
    socket.once(event, ok)
    socket.once('error', settle)
    socket.once('close', closed)
    signal?.addEventListener('abort', aborted, { once: true })
  })
}

async function write (socket: Socket, data: Uint8Array): Promise<void> {
  if (!socket.write(data)) await until(socket, 'drain')
}

/** Sends `bytes` to the sink and waits for its count: the time until the last byte arrived. */
async function sinkOne (port: number, bytes: number): Promise<void> {
  const socket = await open(port)
  try {
    const reply: Buffer[] = []
    socket.on('data', (chunk: Buffer) => reply.push(chunk))
    const ended = until(socket, 'end')
    ended.catch(() => {})
    await write(socket, Uint8Array.of(MODE_SINK))
    for (let sent = 0; sent < bytes; sent += CHUNK.byteLength) {
      await write(socket, CHUNK.subarray(0, Math.min(CHUNK.byteLength, bytes - sent)))
    }
    socket.end()
    await ended
    const counted = Number(Buffer.concat(reply).toString().trim())
    if (counted !== bytes) throw new Error(`sink counted ${counted} of ${bytes} bytes`)
  } finally {
    socket.destroy()
  }
}

export interface Throughput {
  bytes: number
  seconds: number
}

/** `bytes` in total over `streams` parallel connections, from the first write to the last count. */
export async function throughput (port: number, bytes: number, streams: number): Promise<Throughput> {
  const each = Math.floor(bytes / streams)
  const started = now()
  await Promise.all(Array.from({ length: streams }, async () => sinkOne(port, each)))
  return { bytes: each * streams, seconds: (now() - started) / 1000 }
}

/** Round trips of `size`-byte messages on one echo connection, each sent once the last came back (ms). */
export async function latency (port: number, size: number, count: number, warmup = Math.ceil(count / 10)): Promise<number[]> {
  const socket = await open(port)
  try {
    const message = CHUNK.subarray(0, size)
    let pending = 0
    let waiter: { resolve: () => void, reject: (err: Error) => void } | undefined
    socket.on('data', (chunk: Buffer) => {
      pending -= chunk.byteLength
      if (pending < 0) waiter?.reject(new Error('echo returned more bytes than sent'))
      else if (pending === 0) waiter?.resolve()
    })
    socket.on('close', () => waiter?.reject(new Error('connection closed')))
    socket.write(Uint8Array.of(MODE_ECHO))
    const samples: number[] = []
    for (let i = 0; i < warmup + count; i++) {
      const back = new Promise<void>((resolve, reject) => { waiter = { resolve, reject } })
      pending = size
      const started = now()
      socket.write(message)
      await back
      if (i >= warmup) samples.push(now() - started)
    }
    return samples
  } finally {
    socket.destroy()
  }
}

/** Time from connect() to a 1-byte echo arriving on a fresh connection, `count` times in a row (ms). */
export async function connectTimes (port: number, count: number): Promise<number[]> {
  const samples: number[] = []
  for (let i = 0; i < count; i++) {
    const started = now()
    const socket = await open(port)
    try {
      const echoed = until(socket, 'data')
      socket.write(Uint8Array.of(MODE_ECHO, 0x2a))
      await echoed
      samples.push(now() - started)
    } finally {
      socket.destroy()
    }
  }
  return samples
}

export interface Concurrent {
  connections: number
  errors: number
  seconds: number
  /** The first few distinct failures, for the report. */
  failures: string[]
}

/**
 * Opens `connections` connections at once; each sends `bytes` to the echo, half-closes,
 * and must get exactly those bytes back and a FIN. All stay open until all have started.
 */
export async function concurrent (port: number, connections: number, bytes: number, timeoutMs: number): Promise<Concurrent> {
  const payload = CHUNK.subarray(0, bytes)
  const failures = new Set<string>()
  let errors = 0
  const started = now()
  const one = async (): Promise<void> => {
    const signal = AbortSignal.timeout(timeoutMs)
    let socket: Socket | undefined
    try {
      socket = await open(port, signal)
      const chunks: Buffer[] = []
      socket.on('data', (chunk: Buffer) => chunks.push(chunk))
      const ended = until(socket, 'end', signal)
      socket.end(Buffer.concat([Uint8Array.of(MODE_ECHO), payload]))
      await ended
      if (!Buffer.concat(chunks).equals(payload)) throw new Error(`echo differs (${Buffer.concat(chunks).byteLength} of ${bytes} bytes)`)
    } catch (err) {
      errors++
      const e = err as NodeJS.ErrnoException
      failures.add(e.name === 'AbortError' ? `timeout after ${timeoutMs} ms` : (e.code ?? e.message))
    } finally {
      socket?.destroy()
    }
  }
  await Promise.all(Array.from({ length: connections }, one))
  return { connections, errors, seconds: (now() - started) / 1000, failures: [...failures].slice(0, 5) }
}
