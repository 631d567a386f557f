/**
 * Talking to a running daemon over its control socket: `status`, and `connect`, which
 * hands back the socket itself once the daemon has opened the tunnel.
 */
import { lstat } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { ControlError, DaemonNotRunningError, PunchgateError, type ErrorKind } from '../errors.ts'
import type { Path } from '../events.ts'
import { defaultStateDir } from '../identity.ts'
import type { NodeStatus } from '../status.ts'
import { privatePathProblem } from '../secret-file.ts'
import { encodeLine, readLine, type ConnectTotals, type ControlRequest } from './protocol.ts'

/** How long a status reply may take; the daemon answers from memory. */
const STATUS_TIMEOUT_MS = 10_000

/** `connect` waits for a DHT lookup and dials, like a tunnel does. */
const CONNECT_TIMEOUT_MS = 60_000

/** `$XDG_RUNTIME_DIR/punchgate/control.sock`, else `control.sock` in the state directory. */
export function defaultControlPath (env: NodeJS.ProcessEnv = process.env): string {
  const runtime = env.XDG_RUNTIME_DIR
  return runtime != null && runtime !== ''
    ? join(runtime, 'punchgate', 'control.sock')
    : join(defaultStateDir(env), 'control.sock')
}

/** A refusal the daemon reported: its message and error name, re-thrown on this side. */
export class DaemonError extends PunchgateError {
  static readonly NAME = 'DaemonError'
  readonly kind: ErrorKind = 'runtime'
  readonly code: string

  constructor (message: string, code: string) {
    super(message)
    this.name = DaemonError.NAME
    this.code = code
  }
}

/**
 * Before a byte is sent: the path must be a socket we own, in a directory only we (and
 * root) can write. Otherwise another local user may have put their own socket there, to
 * read what `punchgate connect` sends or to answer `status` with lies.
 */
async function checkSocketOwner (path: string): Promise<void> {
  if (process.platform === 'win32' || process.getuid == null) return
  let stats
  try {
    stats = await lstat(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new DaemonNotRunningError(path)
    throw new ControlError(`control socket ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  const uid = process.getuid()
  if (!stats.isSocket()) throw new ControlError(`control socket ${path}: not a socket (left untouched, nothing sent)`)
  if (stats.uid !== uid) {
    throw new ControlError(`control socket ${path}: owned by another user (uid ${stats.uid}; you are uid ${uid}); nothing sent`)
  }
  const problem = privatePathProblem(path)
  if (problem != null) throw new ControlError(`control socket ${path}: ${problem}; nothing sent`)
}

async function dialControl (path: string, signal: AbortSignal): Promise<Socket> {
  await checkSocketOwner(path)
  return new Promise((resolve, reject) => {
    const socket = connect({ path, allowHalfOpen: true })
    const onAbort = (): void => {
      socket.destroy()
      reject(new ControlError(`control socket ${path}: no answer in time`))
    }
    signal.addEventListener('abort', onAbort, { once: true })
    socket.once('connect', () => {
      signal.removeEventListener('abort', onAbort)
      socket.removeAllListeners('error')
      resolve(socket)
    })
    socket.once('error', (err: NodeJS.ErrnoException) => {
      signal.removeEventListener('abort', onAbort)
      socket.destroy()
      // No file, or a file nobody listens on (left by a crash): either way no daemon.
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') reject(new DaemonNotRunningError(path))
      else reject(new ControlError(`control socket ${path}: ${err.code ?? err.message}`))
    })
  })
}

/** True when something accepts connections on `path`. */
export async function isDaemonListening (path: string): Promise<boolean> {
  try {
    const socket = await dialControl(path, AbortSignal.timeout(2_000))
    socket.destroy()
    return true
  } catch (err) {
    if (err instanceof DaemonNotRunningError) return false
    throw err
  }
}

async function request (path: string, req: ControlRequest, signal: AbortSignal): Promise<{ socket: Socket, reply: Record<string, unknown> }> {
  const socket = await dialControl(path, signal)
  socket.on('error', () => {})
  socket.write(encodeLine(req))
  try {
    const reply = await readLine(socket, signal)
    if (reply.ok !== true) {
      throw new DaemonError(typeof reply.error === 'string' ? reply.error : 'the daemon refused', typeof reply.code === 'string' ? reply.code : '')
    }
    return { socket, reply }
  } catch (err) {
    socket.destroy()
    throw err
  }
}

export interface DaemonStatus {
  status: NodeStatus
  connects: ConnectTotals
}

/** Throws DaemonNotRunningError when no daemon listens on `path`. */
export async function requestStatus (path: string, signal: AbortSignal = AbortSignal.timeout(STATUS_TIMEOUT_MS)): Promise<DaemonStatus> {
  const { socket, reply } = await request(path, { op: 'status' }, signal)
  socket.destroy()
  if (typeof reply.status !== 'object' || reply.status === null) throw new ControlError('status reply has no "status"')
  return { status: reply.status as NodeStatus, connects: reply.connects as ConnectTotals }
}

export interface ControlSession {
  /** Raw tunnel bytes both ways; paused: attach a reader, then resume. End it to half-close. */
  socket: Socket
  peer: string
  path: Path
}

/** Asks the daemon for one tunnel connection. Throws DaemonNotRunningError, or DaemonError with its reason. */
export async function requestConnect (
  path: string, target: { service: string, peer?: string }, signal: AbortSignal = AbortSignal.timeout(CONNECT_TIMEOUT_MS)
): Promise<ControlSession> {
  const { socket, reply } = await request(path, { op: 'connect', ...target }, signal)
  return { socket, peer: String(reply.peer), path: reply.path === 'direct' ? 'direct' : 'relay' }
}
