/** The parts of udx-native (1.21, no types of its own) that transport/udx uses. */
declare module 'udx-native' {
  import type { EventEmitter } from 'node:events'

  export interface UdxAddress { host: string, family: number, port: number }

  export interface UdxSocket extends EventEmitter {
    bind: (port?: number, host?: string) => void
    address: () => UdxAddress
    close: () => Promise<void>
    trySend: (buffer: Uint8Array, port: number, host?: string) => void
    setRecvBufferSize: (bytes: number) => void
    setSendBufferSize: (bytes: number) => void
    on: ((event: 'message', listener: (message: Buffer, from: UdxAddress) => void) => this) & ((event: string, listener: (...args: any[]) => void) => this)
  }

  /** A streamx Duplex. */
  export interface UdxStream extends EventEmitter {
    readonly id: number
    readonly destroyed: boolean
    readonly rtt: number
    connect: (socket: UdxSocket, remoteId: number, port: number, host?: string) => void
    setKeepalive: (ms: number) => void
    write: (data: Uint8Array) => boolean
    end: () => void
    destroy: (err?: Error) => void
    pause: () => void
    resume: () => void
  }

  export default class UDX {
    createSocket (options?: { ipv6Only?: boolean, reuseAddress?: boolean }): UdxSocket
    createStream (id: number, options?: Record<string, unknown>): UdxStream
  }
}
