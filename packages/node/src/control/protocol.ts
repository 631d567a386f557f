/**
 * The control socket protocol (docs/protocol.md, "Control socket"): the client sends one
 * JSON line, the daemon answers with one JSON line. After an accepted `connect`, the
 * socket carries the tunnel's raw bytes both ways.
 */
import type { Socket } from 'node:net'
import type { Path } from '../events.ts'
import type { NodeStatus } from '../status.ts'
import { ControlError } from '../errors.ts'

/** A request or reply line longer than this is not ours: NodeStatus of a big node fits easily. */
export const MAX_LINE_BYTES = 1024 * 1024

/** A client that has not sent its request by then is dropped. */
export const REQUEST_TIMEOUT_MS = 10_000

export type ControlRequest =
  | { op: 'status' }
  | { op: 'connect', service: string, peer?: string }

/** Totals of the `connect` sessions this daemon has carried. */
export interface ConnectTotals {
  open: number
  opened: number
  failed: number
  bytesIn: number
  bytesOut: number
}

export type ControlReply =
  | { ok: true, status: NodeStatus, connects: ConnectTotals }
  | { ok: true, peer: string, path: Path }
  | { ok: false, error: string, code: string }

/**
 * Reads one `\n`-terminated line and parses it as a JSON object. Bytes after the line are
 * pushed back into the socket, which is left paused: they belong to whoever reads next.
 */
export async function readLine (socket: Socket, signal: AbortSignal): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = []
  let size = 0
  const line = await new Promise<Buffer>((resolve, reject) => {
    const cleanup = (): void => {
      socket.off('data', onData)
      socket.off('end', onEnd)
      socket.off('error', onError)
      signal.removeEventListener('abort', onAbort)
      socket.pause()
    }
    const fail = (message: string): void => {
      cleanup()
      reject(new ControlError(message))
    }
    const onData = (chunk: Buffer): void => {
      const newline = chunk.indexOf(0x0a)
      if (newline < 0) {
        chunks.push(chunk)
        size += chunk.byteLength
        if (size > MAX_LINE_BYTES) fail(`control line longer than ${MAX_LINE_BYTES} bytes`)
        return
      }
      chunks.push(chunk.subarray(0, newline))
      cleanup()
      const rest = chunk.subarray(newline + 1)
      if (rest.byteLength > 0) socket.unshift(rest)
      resolve(Buffer.concat(chunks))
    }
    const onEnd = (): void => fail('control socket closed before a full line arrived')
    const onError = (err: Error): void => fail(`control socket: ${err.message}`)
    const onAbort = (): void => fail('control socket: no line in time')
    if (signal.aborted) { onAbort(); return }
    socket.on('data', onData)
    socket.once('end', onEnd)
    socket.once('error', onError)
    signal.addEventListener('abort', onAbort, { once: true })
    socket.resume()
  })
  let value: unknown
  try {
    value = JSON.parse(line.toString('utf8'))
  } catch {
    throw new ControlError('control line is not JSON')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ControlError('control line is not a JSON object')
  }
  return value as Record<string, unknown>
}

export function encodeLine (value: ControlRequest | ControlReply): string {
  return `${JSON.stringify(value)}\n`
}
