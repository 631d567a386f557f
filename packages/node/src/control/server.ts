/**
 * The daemon's control socket: a Unix socket only its owner can use, answering `status`
 * and carrying `connect` sessions (punchgate connect) over the daemon's own connections.
 * The socket is claimed before the node starts, so a second daemon fails fast and clearly.
 */
import { createServer, type Server, type Socket } from 'node:net'
import { lstat, mkdir, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'
import { isServiceName } from '../config.ts'
import { ControlError, ControlSocketInUseError } from '../errors.ts'
import type { PunchgateNode } from '../node.ts'
import { pipeSocketStream } from '../protocol/pipe.ts'
import { privatePathProblem } from '../secret-file.ts'
import { isDaemonListening } from './client.ts'
import { encodeLine, readLine, REQUEST_TIMEOUT_MS, type ConnectTotals, type ControlReply, type ControlRequest } from './protocol.ts'

export class ControlServer {
  readonly path: string
  private readonly server: Server
  private readonly sockets = new Set<Socket>()
  private node?: PunchgateNode
  private readonly closing = new AbortController()
  readonly connects: ConnectTotals = { open: 0, opened: 0, failed: 0, bytesIn: 0, bytesOut: 0 }

  private constructor (path: string) {
    this.path = path
    this.server = createServer({ allowHalfOpen: true }, socket => { void this.accept(socket) })
  }

  /**
   * Creates the directory (0700) and listens on `path` (0600). A socket file nobody answers
   * on is left from a crash and is replaced; one that answers belongs to a running daemon.
   */
  static async listen (path: string): Promise<ControlServer> {
    try {
      await mkdir(dirname(path), { recursive: true, mode: 0o700 })
    } catch (err) {
      throw new ControlError(`--control ${JSON.stringify(path)}: cannot create its directory (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
    }
    // Where others can write, they could replace the socket with their own and read what
    // `punchgate connect` sends (the client checks too).
    const problem = privatePathProblem(path)
    if (problem != null) throw new ControlError(`--control ${JSON.stringify(path)}: ${problem}`)
    await removeStaleSocket(path)
    const control = new ControlServer(path)
    await new Promise<void>((resolve, reject) => {
      control.server.once('error', (err: NodeJS.ErrnoException) => {
        reject(err.code === 'EADDRINUSE'
          ? new ControlSocketInUseError(path)
          : new ControlError(`--control ${JSON.stringify(path)}: cannot listen (${err.code ?? err.message})`))
      })
      // bind() creates the socket file with the process umask: make it owner-only from the
      // first instant rather than chmod it after others could already have connected.
      const umask = process.umask(0o177)
      try {
        control.server.listen(path, () => resolve())
      } finally {
        process.umask(umask)
      }
    })
    return control
  }

  /** Starts answering with this node; requests before that are told the daemon is starting. */
  serve (node: PunchgateNode): void {
    this.node = node
    node.events.emitEvent('control.listening', { path: this.path })
  }

  /** Stops listening (the socket file is removed) and ends every session. Idempotent. */
  async close (): Promise<void> {
    this.closing.abort()
    for (const socket of this.sockets) socket.destroy()
    if (!this.server.listening) return
    await new Promise<void>(resolve => this.server.close(() => resolve()))
  }

  private async accept (socket: Socket): Promise<void> {
    this.sockets.add(socket)
    socket.on('close', () => this.sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    let request: ControlRequest
    try {
      request = parseRequest(await readLine(socket, AbortSignal.any([this.closing.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)])))
    } catch (err) {
      this.reply(socket, failure(err))
      return
    }
    const node = this.node
    if (node == null) {
      this.reply(socket, { ok: false, error: 'the daemon is starting; try again', code: 'Starting' })
      return
    }
    if (request.op === 'status') {
      this.reply(socket, { ok: true, status: node.status(), connects: { ...this.connects } })
      return
    }
    await this.connect(socket, node, request.service, request.peer)
  }

  private reply (socket: Socket, reply: ControlReply): void {
    socket.end(encodeLine(reply))
  }

  private async connect (socket: Socket, node: PunchgateNode, service: string, peer: string | undefined): Promise<void> {
    // The client giving up (closing its socket) cancels the lookup and dials.
    const gone = new AbortController()
    const onClose = (): void => gone.abort(new Error('control client went away'))
    socket.once('close', onClose)
    let tunnel
    try {
      tunnel = await node.openTunnelStream({
        service,
        ...(peer != null ? { peer } : {}),
        signal: AbortSignal.any([gone.signal, this.closing.signal])
      })
    } catch (err) {
      this.connects.failed++
      if (!socket.destroyed) this.reply(socket, failure(err))
      return
    } finally {
      socket.off('close', onClose)
    }
    if (socket.destroyed) {
      tunnel.stream.abort(new Error('control client went away'))
      return
    }

    const label = `connect:${peer != null ? `${peer}:` : ''}${service}`
    const started = Date.now()
    this.connects.opened++
    this.connects.open++
    socket.write(encodeLine({ ok: true, peer: tunnel.peer, path: tunnel.path }))
    node.events.emitEvent('tunnel.opened', { side: 'client', tunnel: label, peer: tunnel.peer, service, path: tunnel.path })
    socket.removeAllListeners('error')
    const result = pipeSocketStream(socket, tunnel.stream)
    socket.resume()
    const { bytesIn, bytesOut, error } = await result
    this.connects.open--
    this.connects.bytesIn += bytesIn
    this.connects.bytesOut += bytesOut
    node.events.emitEvent('tunnel.closed', {
      side: 'client', tunnel: label, peer: tunnel.peer, service, bytesIn, bytesOut, ms: Date.now() - started,
      ...(error != null ? { error: error.message } : {})
    })
  }
}

function parseRequest (line: Record<string, unknown>): ControlRequest {
  if (line.op === 'status') return { op: 'status' }
  if (line.op === 'connect') {
    if (typeof line.service !== 'string' || !isServiceName(line.service)) throw new ControlError('connect needs a "service" (1-63 letters, digits, \'.\', \'_\' or \'-\')')
    if (line.peer != null && typeof line.peer !== 'string') throw new ControlError('"peer" must be a string')
    return { op: 'connect', service: line.service, ...(typeof line.peer === 'string' ? { peer: line.peer } : {}) }
  }
  throw new ControlError(`unknown op ${JSON.stringify(line.op)}`)
}

function failure (err: unknown): ControlReply {
  const error = err instanceof Error ? err : new Error(String(err))
  return { ok: false, error: error.message, code: error.name }
}

async function removeStaleSocket (path: string): Promise<void> {
  let isSocket: boolean
  try {
    isSocket = (await lstat(path)).isSocket()
  } catch {
    return
  }
  if (!isSocket) throw new ControlError(`--control ${JSON.stringify(path)}: exists and is not a socket (left untouched)`)
  if (await isDaemonListening(path)) throw new ControlSocketInUseError(path)
  await unlink(path).catch(() => {})
}
