/**
 * The relay's side of a splice: a TCP listener where the two ends of a pair each connect
 * and present a one-time token; once both are there, the relay copies bytes between the
 * two sockets and nothing else. It never holds keys: the ends run TLS end to end.
 */
import { createServer, type Server, type Socket, type AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { formatHostPort } from '../protocol/expose.ts'

export const TOKEN_BYTES = 32

interface Pending {
  /** The pair's other token. */
  partner: string
  /** Both ends trusted: not cut at maxBytesPerPair / maxDurationMs. */
  uncapped: boolean
  socket?: Socket
  timer: NodeJS.Timeout
}

export interface SplicerOptions {
  host: string
  port: number
  /** How long a token waits for its socket and for its partner. */
  pairTimeoutMs: number
  /** Pairs handed out and not yet closed, at most. */
  maxPairs: number
  /** Bytes one pair may carry, both ways together; then both sockets are cut (unless the pair is uncapped). */
  maxBytesPerPair: number
  /** How long one pair may last; then both sockets are cut (unless the pair is uncapped). */
  maxDurationMs: number
  /** Sockets connected that have not yet been paired, at most; more are closed at once. */
  maxUnpaired: number
}

export interface Splicer {
  readonly port: number
  /** HOST:PORT it listens on. */
  readonly address: string
  /**
   * Two fresh tokens, one per end, each valid for one connection; undefined when `maxPairs`
   * are in use. `uncapped`: both ends are trusted, no byte or duration cap.
   */
  pair: (options?: { uncapped?: boolean }) => [Buffer, Buffer] | undefined
  /** Gives back a pair that will not be used (the far end refused): its slot is free at once. */
  release: (tokens: [Buffer, Buffer]) => void
  /** Pairs spliced and copying now. */
  active: () => number
  /** Bytes copied so far, both ways. */
  copied: () => number
  close: () => Promise<void>
}

export async function startSplicer (options: SplicerOptions): Promise<Splicer> {
  const pending = new Map<string, Pending>()
  const unpaired = new Set<Socket>()
  const joined = new Set<Socket>()
  let active = 0
  let copied = 0

  const forget = (token: string): void => {
    const entry = pending.get(token)
    if (entry == null) return
    clearTimeout(entry.timer)
    pending.delete(token)
  }

  const join = (a: Socket, b: Socket, uncapped: boolean): void => {
    active++
    let carried = 0
    const cut = (): void => { a.destroy(); b.destroy() }
    const maxBytes = uncapped ? Infinity : options.maxBytesPerPair
    const lifetime = uncapped ? undefined : setTimeout(cut, options.maxDurationMs)
    let closed = 0
    for (const [from, to] of [[a, b], [b, a]] as const) {
      joined.add(from)
      from.on('data', (chunk: Buffer) => {
        copied += chunk.byteLength
        carried += chunk.byteLength
        if (carried > maxBytes) cut()
      })
      from.pipe(to)
      from.on('error', cut)
      from.on('close', () => {
        joined.delete(from)
        to.destroy()
        if (++closed === 2) { active--; clearTimeout(lifetime) }
      })
    }
    a.resume()
    b.resume()
  }

  // noDelay: a small write must leave at once. With Nagle, the second piece of a request
  // waited for the far end's delayed ACK: 44 ms per new tunnel connection in the bench.
  const server: Server = createServer({ allowHalfOpen: true, noDelay: true }, socket => {
    if (unpaired.size >= options.maxUnpaired) { socket.destroy(); return }
    unpaired.add(socket)
    socket.on('error', () => {})
    const giveUp = setTimeout(() => socket.destroy(), options.pairTimeoutMs)
    let head = Buffer.alloc(0)
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk])
      if (head.byteLength < TOKEN_BYTES) return
      socket.off('data', onData)
      socket.pause()
      clearTimeout(giveUp)
      const token = head.subarray(0, TOKEN_BYTES).toString('hex')
      const rest = head.subarray(TOKEN_BYTES)
      const entry = pending.get(token)
      if (entry == null || entry.socket != null) { socket.destroy(); return }
      if (rest.byteLength > 0) socket.unshift(rest)
      entry.socket = socket
      const partner = pending.get(entry.partner)
      if (partner?.socket == null) return
      forget(token)
      forget(entry.partner)
      unpaired.delete(socket)
      unpaired.delete(partner.socket)
      join(partner.socket, socket, entry.uncapped)
    }
    socket.on('data', onData)
    socket.on('close', () => { clearTimeout(giveUp); unpaired.delete(socket) })
  })
  server.listen(options.port, options.host)
  await new Promise<void>((resolve, reject) => { server.once('listening', resolve); server.once('error', reject) })

  const bound = server.address() as AddressInfo
  return {
    port: bound.port,
    address: formatHostPort({ host: bound.address, port: bound.port }),
    pair: ({ uncapped = false } = {}) => {
      if (active + pending.size / 2 >= options.maxPairs) return undefined
      const a = randomBytes(TOKEN_BYTES)
      const b = randomBytes(TOKEN_BYTES)
      const [ka, kb] = [a.toString('hex'), b.toString('hex')]
      const expire = (token: string): NodeJS.Timeout => setTimeout(() => {
        pending.get(token)?.socket?.destroy()
        forget(token)
      }, options.pairTimeoutMs)
      pending.set(ka, { partner: kb, uncapped, timer: expire(ka) })
      pending.set(kb, { partner: ka, uncapped, timer: expire(kb) })
      return [a, b]
    },
    release: tokens => {
      for (const token of tokens) {
        const key = token.toString('hex')
        pending.get(key)?.socket?.destroy()
        forget(key)
      }
    },
    active: () => active,
    copied: () => copied,
    close: async () => {
      for (const token of [...pending.keys()]) { pending.get(token)?.socket?.destroy(); forget(token) }
      for (const socket of [...unpaired, ...joined]) socket.destroy()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}
