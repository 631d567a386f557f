/**
 * A libp2p MultiaddrConnection over a TCP socket that some other code opened (here: a
 * socket the relay has spliced to the far peer). socket-tls.ts finds `socket` and runs
 * TLS on it natively, as on a dialled TCP connection.
 */
import type { Socket } from 'node:net'
import { once } from 'node:events'
import { TimeoutError, type AbortOptions, type Logger, type MessageStreamDirection } from '@libp2p/interface'
import { AbstractMultiaddrConnection } from '@libp2p/utils'
import type { Uint8ArrayList } from 'uint8arraylist'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { SendResult } from '@libp2p/utils'

export class SocketConnection extends AbstractMultiaddrConnection {
  readonly socket: Socket

  constructor (socket: Socket, remoteAddr: Multiaddr, direction: MessageStreamDirection, log: Logger, inactivityTimeout = 120_000) {
    super({ remoteAddr, direction, log, inactivityTimeout })
    this.socket = socket
    socket.on('data', (chunk: Buffer) => { this.onData(chunk) })
    socket.on('error', (err: Error) => { this.abort(err) })
    socket.setTimeout(inactivityTimeout)
    socket.once('timeout', () => { this.abort(new TimeoutError('connection idle')) })
    socket.once('end', () => { this.onTransportClosed() })
    socket.once('close', (hadError: boolean) => {
      if (hadError) this.abort(new Error('socket closed with an error'))
      else this.onTransportClosed()
    })
    socket.on('drain', () => { this.safeDispatchEvent('drain') })
  }

  sendData (data: Uint8ArrayList): SendResult {
    let sentBytes = 0
    let canSendMore = true
    for (const buf of data) {
      sentBytes += buf.byteLength
      canSendMore = this.socket.write(buf)
      if (!canSendMore) break
    }
    return { sentBytes, canSendMore }
  }

  async sendClose (options?: AbortOptions): Promise<void> {
    if (this.socket.destroyed) return
    this.socket.destroySoon()
    await once(this.socket, 'close', options)
  }

  sendReset (): void {
    if (this.socket.writableEnded) this.socket.destroy()
    else this.socket.resetAndDestroy()
  }

  sendPause (): void { this.socket.pause() }
  sendResume (): void { this.socket.resume() }
}
