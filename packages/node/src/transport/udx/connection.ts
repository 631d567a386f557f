/**
 * A libp2p MultiaddrConnection over one udx stream (a reliable, ordered, congestion-
 * controlled byte stream over UDP), as @libp2p/tcp's is over a TCP socket: the upgrader
 * runs TLS or Noise and yamux on it like on any other.
 */
import { AbstractMultiaddrConnection } from '@libp2p/utils'
import type { AbortOptions, Logger, MessageStreamDirection } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { UdxStream } from 'udx-native'
import { Uint8ArrayList } from 'uint8arraylist'

export interface UdxConnectionInit {
  stream: UdxStream
  direction: MessageStreamDirection
  remoteAddr: Multiaddr
  log: Logger
}

export class UdxConnection extends AbstractMultiaddrConnection {
  readonly udxStream: UdxStream
  private closed = false
  private pending: Uint8Array[] = []
  private readonly flush = (): void => {
    const chunks = this.pending
    this.pending = []
    if (chunks.length === 1) this.onData(chunks[0] as Uint8Array)
    else if (chunks.length > 1) this.onData(new Uint8ArrayList(...chunks))
  }

  constructor (init: UdxConnectionInit) {
    super({ ...init, log: init.log })
    this.udxStream = init.stream
    const stream = init.stream
    // udx delivers one packet (~1.4 KB) per 'data' event: hand them on in one batch per turn
    // of the event loop, so TLS and yamux see tens of KB at a time, not one packet.
    stream.on('data', (buf: Uint8Array) => {
      if (this.pending.length === 0) setImmediate(this.flush)
      this.pending.push(buf)
    })
    stream.on('error', (err: Error) => {
      this.log('udx error %a %e', this.remoteAddr, err)
      this.abort(err)
    })
    // The remote ended its side: end ours too, as TCP without half-open does; 'close' follows.
    stream.on('end', () => {
      this.flush()
      stream.end()
    })
    stream.once('close', () => {
      this.flush()
      this.closed = true
      this.onTransportClosed()
    })
    stream.on('drain', () => { this.safeDispatchEvent('drain') })
  }

  sendData (data: Uint8ArrayList): { sentBytes: number, canSendMore: boolean } {
    let sentBytes = 0
    let canSendMore = true
    for (const buf of data) {
      sentBytes += buf.byteLength
      canSendMore = this.udxStream.write(buf)
      if (!canSendMore) break
    }
    return { sentBytes, canSendMore }
  }

  async sendClose (options?: AbortOptions): Promise<void> {
    if (this.closed) return
    const closed = new Promise<void>((resolve, reject) => {
      this.udxStream.once('close', () => { resolve() })
      options?.signal?.addEventListener('abort', () => {
        this.udxStream.destroy()
        reject(options.signal?.reason)
      }, { once: true })
    })
    this.udxStream.end()
    await closed
  }

  sendReset (): void {
    this.udxStream.destroy()
  }

  sendPause (): void {
    this.udxStream.pause()
  }

  sendResume (): void {
    this.udxStream.resume()
  }
}
