/**
 * libp2p's TLS encrypter (`/tls/1.0.0`, same certificates, same checks, same early muxer
 * negotiation through ALPN: it interoperates with @libp2p/tls), with one difference in
 * where TLS runs. @libp2p/tls always feeds TLS through a JavaScript duplex wrapped around
 * the connection, so every byte crosses three extra JS layers and their buffers. When the
 * connection is a plain TCP socket from @libp2p/tcp, this one hands the socket itself to
 * Node's TLS, which then reads and writes the TCP handle natively: about 1.4x the
 * throughput per core and half the garbage (docs/performance.md). Relayed and otherwise
 * wrapped connections take @libp2p/tls's duplex. On both, what TLS decrypts reaches the
 * muxer in one message per read, not per 16 KiB (coalesceReads).
 */
import { Socket } from 'node:net'
import { TLSSocket, connect, type TLSSocketOptions } from 'node:tls'
import { InvalidCryptoExchangeError, TimeoutError, serviceCapabilities } from '@libp2p/interface'
import type { AbstractMessageStream } from '@libp2p/utils'
import type { ComponentLogger, ConnectionEncrypter, Logger, MessageStream, PrivateKey, SecureConnectionOptions, SecuredConnection, StreamMuxerFactory, Upgrader } from '@libp2p/interface'
import { PROTOCOL } from '@libp2p/tls'
import { Uint8ArrayList } from 'uint8arraylist'
import { generateCertificate, toMessageStream, toNodeDuplex, verifyPeerCertificate } from '@libp2p/tls/utils'

/**
 * Plaintext a TLS socket takes before write() asks the muxer to wait for 'drain'. Node's
 * default (64 KiB) is below one yamux frame and its header, so nearly every frame waited;
 * on a relayed connection each wait also holds the inner TLS socket's write. 11-13% less
 * CPU on the relayed path (docs/performance.md). Per connection, and only while the
 * kernel's socket buffer is full.
 */
const WRITE_BUFFER_BYTES = 256 * 1024

export interface SocketTlsComponents {
  privateKey: PrivateKey
  logger: ComponentLogger
  upgrader: Upgrader
}

/** The TCP socket under `connection` when TLS can take it over as it is, else undefined. */
function ownSocket (connection: MessageStream): Socket | undefined {
  const socket = (connection as { socket?: unknown }).socket
  if (!(socket instanceof Socket) || socket.destroyed) return undefined
  // Bytes the connection already read (pipelined after protocol negotiation) are
  // TLS's; the duplex path delivers them, so leave such a connection to it.
  if (connection.readBufferLength > 0) return undefined
  return socket
}

class SocketTls implements ConnectionEncrypter {
  readonly protocol = PROTOCOL
  private readonly components: SocketTlsComponents
  private readonly log: Logger

  constructor (components: SocketTlsComponents) {
    this.components = components
    this.log = components.logger.forComponent('punchgate:socket-tls')
  }

  readonly [Symbol.toStringTag] = 'punchgate/socket-tls'
  readonly [serviceCapabilities]: string[] = ['@libp2p/connection-encryption']

  async secureInbound (connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection> {
    return this.encrypt(connection, true, options)
  }

  async secureOutbound (connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection> {
    return this.encrypt(connection, false, options)
  }

  private async encrypt (connection: MessageStream, isServer: boolean, options?: SecureConnectionOptions): Promise<SecuredConnection> {
    const log = this.log
    const muxers = this.components.upgrader.getStreamMuxers()
    let streamMuxer: StreamMuxerFactory | undefined
    const opts: TLSSocketOptions = {
      ...await generateCertificate(this.components.privateKey, options),
      isServer,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      // Certificates are self-signed; the peer id inside is what gets verified.
      rejectUnauthorized: false,
      ALPNProtocols: [...(options?.skipStreamMuxerNegotiation === true ? [] : muxers.keys()), 'libp2p'],
      ALPNCallback: ({ protocols }) => {
        let chosen: string | undefined
        for (const protocol of protocols) {
          if (protocol === 'libp2p') chosen = 'libp2p'
          streamMuxer = muxers.get(protocol)
          if (streamMuxer != null) return protocol
        }
        return chosen
      }
    }

    const raw = ownSocket(connection)
    let transport: Socket | ReturnType<typeof toNodeDuplex>
    if (raw != null) {
      // From here on TLS reads the TCP handle; the connection's own reader must not.
      raw.removeAllListeners('data')
      // The connection's idle timer watched the raw socket's traffic, which TLS now
      // bypasses: it moves to the TLS socket below.
      raw.setTimeout(0)
      transport = raw
    } else {
      transport = toNodeDuplex(connection)
      transport.on('error', (err: Error) => socket.emit('error', err))
    }
    // `highWaterMark` is not in TLSSocketOptions' type, but net.Socket takes it (both sides).
    const buffered = { ...opts, highWaterMark: WRITE_BUFFER_BYTES } as TLSSocketOptions
    const socket: TLSSocket = isServer
      ? new TLSSocket(transport, { ...buffered, requestCert: true })
      : connect({ ...buffered, socket: transport })
    capWriteBatches(socket)
    freeSslOffStack(socket)
    log('%s %s connection with TLS on %s', isServer ? 'accepting' : 'securing', connection.direction, raw != null ? 'the TCP socket' : 'a duplex')

    const onAbort = (): void => { socket.emit('error', new TimeoutError('TLS handshake timed out')) }
    options?.signal?.addEventListener('abort', onAbort)

    try {
      return await new Promise<SecuredConnection>((resolve, reject) => {
        socket.on('error', (err: Error) => {
          log.error('error encrypting %s connection - %e', connection.direction, err)
          socket.destroy()
          connection.abort(err)
          reject(err)
        })
        socket.once('secure', () => {
          const certificate = socket.getPeerCertificate()
          verifyPeerCertificate(certificate.raw, options?.remotePeer, log).then(remotePeer => {
            // 'libp2p' means the remote does not do early muxer negotiation.
            if (!isServer && typeof socket.alpnProtocol === 'string' && socket.alpnProtocol !== 'libp2p' && options?.skipStreamMuxerNegotiation !== true) {
              streamMuxer = muxers.get(socket.alpnProtocol)
              if (streamMuxer == null) {
                const err = new InvalidCryptoExchangeError(`Selected muxer ${socket.alpnProtocol} did not exist`)
                connection.abort(err)
                reject(err)
                return
              }
            }
            if (raw != null) keepIdleTimeout(connection, socket)
            const secured = toMessageStream(connection, socket)
            coalesceReads(socket, secured as unknown as AbstractMessageStream)
            resolve({ remotePeer, connection: secured, ...(streamMuxer != null ? { streamMuxer } : {}) })
          }, (err: Error) => socket.emit('error', err))
        })
      })
    } finally {
      options?.signal?.removeEventListener('abort', onAbort)
    }
  }
}

/**
 * Largest batch of queued writes handed to TLS in one call. Node's TLS copies a batch of
 * several buffers into one new allocation before encrypting it, and glibc maps every
 * allocation of 128 KiB or more afresh (node-flags.ts fixes its mmap threshold there), so
 * a larger batch costs a mapping and its page faults on each write.
 */
export const MAX_WRITE_BATCH_BYTES = 96 * 1024

interface QueuedWrite { chunk: Buffer | string, encoding: BufferEncoding }
/** Node's Writable marks a list of queued writes that holds only Buffers (net.Socket's fast path). */
type QueuedWrites = QueuedWrite[] & { allBuffers?: boolean }
type Writev = (this: TLSSocket, chunks: QueuedWrites, callback: (err?: Error | null) => void) => void

function byteLength ({ chunk, encoding }: QueuedWrite): number {
  return typeof chunk === 'string' ? Buffer.byteLength(chunk, encoding) : chunk.byteLength
}

/** Hands the socket's queued writes to TLS in batches of at most MAX_WRITE_BATCH_BYTES, one after the other. */
function capWriteBatches (socket: TLSSocket): void {
  const target = socket as unknown as { _writev: Writev }
  const writev = target._writev
  target._writev = function (chunks, callback) {
    let start = 0
    const next = (err?: Error | null): void => {
      if (err != null || start === chunks.length) {
        callback(err)
        return
      }
      // At least one write per batch, however large; then as many as fit.
      let end = start
      let size = 0
      while (end < chunks.length) {
        const bytes = byteLength(chunks[end]!)
        if (end > start && size + bytes > MAX_WRITE_BATCH_BYTES) break
        size += bytes
        end++
      }
      let batch = chunks
      if (start > 0 || end < chunks.length) {
        batch = chunks.slice(start, end)
        batch.allBuffers = chunks.allBuffers
      }
      start = end
      writev.call(this, batch, next)
    }
    next()
  }
}

/**
 * Frees the socket's OpenSSL state one turn of the event loop after Node asks, never
 * during the call that asked. When the TCP socket under TLS is closed first (a dial's
 * abort signal, libp2p's reset), Node's TLS frees that state at once when the TLS socket
 * closes; if that happens in the promise jobs Node runs while it reports a finished
 * handshake, it is freed under OpenSSL's own stack, which then writes to it: SIGSEGV in
 * SSL_read (valgrind: freed by TLSWrap::DestroySSL from SSLInfoCallback's microtasks).
 * Node defers the same free on its other path for this reason (`onSocketCloseDestroySSL`).
 */
export function freeSslOffStack (socket: TLSSocket): void {
  const wrap = (socket as unknown as { _handle?: { destroySSL?: () => void } })._handle
  const destroySSL = wrap?.destroySSL
  if (wrap == null || typeof destroySSL !== 'function') return
  wrap.destroySSL = function (this: unknown) {
    setImmediate(() => destroySSL.call(this))
  }
}

/** The most plaintext Node's TLS hands to JavaScript at once (`kClearOutChunkSize`). */
const TLS_READ_PIECE_BYTES = 16 * 1024

/**
 * Hands the muxer what TLS decrypted from one read of the connection as one message,
 * not one per 16 KiB piece: @libp2p/tls passes each 'data' event on, and every message
 * costs an event, a decoder pass and their garbage in the muxer, and on a relay the
 * join's work too. A piece shorter than the maximum ends what TLS had, so it goes at once
 * with whatever came before it (a small message waits for nothing); full pieces wait for
 * the end of this turn of the event loop, or for the socket's end. On the relayed path
 * this took 9-10% off the CPU per GB (docs/performance.md).
 */
function coalesceReads (socket: TLSSocket, secured: AbstractMessageStream): void {
  let pending: Buffer[] = []
  let scheduled = false
  const flush = (): void => {
    scheduled = false
    if (pending.length === 0) return
    const pieces = pending
    pending = []
    secured.onData(pieces.length === 1 ? pieces[0]! : new Uint8ArrayList(...pieces))
  }
  socket.removeAllListeners('data')
  socket.on('data', (piece: Buffer) => {
    pending.push(piece)
    if (piece.byteLength < TLS_READ_PIECE_BYTES) {
      flush()
    } else if (!scheduled) {
      scheduled = true
      setImmediate(flush)
    }
  })
  // Whatever is pending reaches the stream before it learns of the end.
  socket.prependListener('end', flush)
  socket.prependListener('close', flush)
}

/** The connection's inactivity timeout, now measured on the TLS socket that carries its bytes. */
function keepIdleTimeout (connection: MessageStream, socket: TLSSocket): void {
  const ms = connection.inactivityTimeout
  if (!(ms > 0)) return
  socket.setTimeout(ms)
  socket.once('timeout', () => connection.abort(new TimeoutError('connection idle')))
}

export function socketTls (): (components: SocketTlsComponents) => ConnectionEncrypter {
  return components => new SocketTls(components)
}
