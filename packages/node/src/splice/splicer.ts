/**
 * The relay's side of a splice: a TCP listener where the two ends of a pair each connect
 * and present a one-time token; once both are there, the relay copies bytes between the
 * two sockets and nothing else. It never holds keys: the ends run TLS end to end.
 */
import { createServer, type Server, type Socket, type AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { formatHostPort } from '../protocol/expose.ts'
import { withOwnReadBuffer } from './own-buffer.ts'

export const TOKEN_BYTES = 32

/**
 * Bytes one read of a joined socket takes at most: 16 KiB at first, 128 KiB for good once a
 * read has filled that (a bulk transfer), so an interactive pair holds little. Copying 2 GiB
 * through one pair cost the relay 0.52-0.57 CPU s/GiB this way, 0.71-0.80 with 64 KiB
 * throughout, and 1.63-1.79 with Node's fresh buffer per read (docs/splice.md).
 */
const COPY_READ_BYTES = 16 * 1024
const BULK_READ_BYTES = 128 * 1024
/** Bytes one read of a socket not yet joined takes at most: its token, and what follows it. */
const TOKEN_READ_BYTES = 4 * 1024

/** One connected end: its socket, the buffer its reads land in, and what is done with them. */
interface Spliced {
  socket: Socket
  /** The buffer its next read lands in: a small one until it is joined. */
  readInto: Buffer
  /** What a read does; false pauses the socket. */
  onBytes: (bytes: Buffer) => boolean
  /** Bytes that came after the token before the pair was joined. */
  early?: Buffer
}

interface Pending {
  /** The pair's other token. */
  partner: string
  /** Both ends trusted: not cut at maxBytesPerPair / maxDurationMs. */
  uncapped: boolean
  end?: Spliced
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

  /**
   * Copies both ways until either end closes or errors, or a cap is hit. Each socket reads
   * into its own buffer (own-buffer.ts) and each read is written to the other socket at
   * once. A write the kernel takes whole is done when `write` returns; one it does not
   * still points into the reader's buffer, so that socket reads no more until it is done.
   */
  const join = (a: Spliced, b: Spliced, uncapped: boolean): void => {
    active++
    let carried = 0
    const cut = (): void => { a.socket.destroy(); b.socket.destroy() }
    const maxBytes = uncapped ? Infinity : options.maxBytesPerPair
    const lifetime = uncapped ? undefined : setTimeout(cut, options.maxDurationMs)
    let closed = 0
    for (const [from, to] of [[a, b], [b, a]] as const) {
      joined.add(from.socket)
      let waiting = false
      const written = (): void => {
        if (waiting && to.socket.writableLength === 0) { waiting = false; from.socket.resume() }
      }
      const count = (bytes: Buffer): boolean => {
        copied += bytes.byteLength
        carried += bytes.byteLength
        if (carried <= maxBytes) return true
        cut()
        return false
      }
      from.onBytes = bytes => {
        if (!count(bytes)) return false
        // The next read lands in a larger buffer; a write still pending keeps the old one.
        if (from.readInto.byteLength < BULK_READ_BYTES && bytes.byteLength === from.readInto.byteLength) from.readInto = Buffer.allocUnsafe(BULK_READ_BYTES)
        to.socket.write(bytes, written)
        if (to.socket.writableLength === 0) return true
        waiting = true
        return false
      }
      // What came after the token, before the pair was joined: a copy of its own.
      if (from.early != null && count(from.early)) to.socket.write(from.early)
      from.early = undefined
      from.socket.on('end', () => to.socket.end())
      from.socket.on('error', cut)
      from.socket.on('close', () => {
        joined.delete(from.socket)
        to.socket.destroy()
        if (++closed === 2) { active--; clearTimeout(lifetime) }
      })
    }
    // The end that waited for its partner returned false (paused); the other is mid-read.
    a.socket.resume()
  }

  // noDelay: a small write must leave at once. With Nagle, the second piece of a request
  // waited for the far end's delayed ACK: 44 ms per new tunnel connection in the bench.
  // pauseOnConnect: nothing is read before the socket is handed to one with its own buffer.
  const server: Server = createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, accepted => {
    if (unpaired.size >= options.maxUnpaired) { accepted.destroy(); return }
    const token = Buffer.alloc(TOKEN_BYTES)
    let tokenRead = 0
    // A connection not yet joined (a stranger's, maybe) holds only a small buffer.
    const end: Spliced = { socket: accepted, readInto: Buffer.allocUnsafe(TOKEN_READ_BYTES), onBytes: bytes => readToken(bytes) }
    let socket: Socket
    try {
      socket = withOwnReadBuffer(accepted, () => end.readInto, bytes => end.onBytes(bytes))
    } catch {
      // HandoffError, on a Node that keeps the handle elsewhere: no splice, the ends stay on the circuit.
      accepted.destroy()
      return
    }
    end.socket = socket
    unpaired.add(socket)
    socket.on('error', () => {})
    const giveUp = setTimeout(() => socket.destroy(), options.pairTimeoutMs)
    const readToken = (bytes: Buffer): boolean => {
      const taken = bytes.copy(token, tokenRead)
      tokenRead += taken
      if (tokenRead < TOKEN_BYTES) return true
      clearTimeout(giveUp)
      // Kept until the pair is joined (the socket is paused by then, so this is one read).
      end.onBytes = more => { end.early = Buffer.concat([end.early ?? Buffer.alloc(0), more]); return false }
      if (taken < bytes.byteLength) end.onBytes(bytes.subarray(taken))
      const key = token.toString('hex')
      const entry = pending.get(key)
      if (entry == null || entry.end != null) { socket.destroy(); return false }
      entry.end = end
      const partner = pending.get(entry.partner)
      if (partner?.end == null) return false
      forget(key)
      forget(entry.partner)
      unpaired.delete(socket)
      unpaired.delete(partner.end.socket)
      for (const spliced of [end, partner.end]) spliced.readInto = Buffer.allocUnsafe(COPY_READ_BYTES)
      join(partner.end, end, entry.uncapped)
      // This socket is reading now: it goes on (join resumed only the partner, paused above).
      return true
    }
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
        pending.get(token)?.end?.socket.destroy()
        forget(token)
      }, options.pairTimeoutMs)
      pending.set(ka, { partner: kb, uncapped, timer: expire(ka) })
      pending.set(kb, { partner: ka, uncapped, timer: expire(kb) })
      return [a, b]
    },
    release: tokens => {
      for (const token of tokens) {
        const key = token.toString('hex')
        pending.get(key)?.end?.socket.destroy()
        forget(key)
      }
    },
    active: () => active,
    copied: () => copied,
    close: async () => {
      for (const token of [...pending.keys()]) { pending.get(token)?.end?.socket.destroy(); forget(token) }
      for (const socket of [...unpaired, ...joined]) socket.destroy()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}
