/**
 * Worker processes of the scale bench, each holding many light peers, driven over IPC
 * with one request at a time per worker. They run under the bench's own Node, without the
 * daemon's flags: they stand for many machines, and only the public node is measured.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'

export class Worker<Request extends { type: string }, Reply> {
  readonly name: string
  private readonly child: ChildProcess
  private exited?: string

  constructor (script: string, name: string) {
    this.name = name
    this.child = fork(join(import.meta.dirname, script), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.child.on('exit', (code, signal) => { this.exited = `exited with ${signal ?? code}` })
  }

  get pid (): number {
    return this.child.pid ?? 0
  }

  /** Sends one request and resolves with the worker's reply to it. */
  async ask (request: Request, timeoutMs = 600_000): Promise<Reply> {
    if (this.exited != null) throw new Error(`${this.name} ${this.exited}`)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { cleanup(); reject(new Error(`${this.name}: no answer to ${request.type} within ${timeoutMs} ms`)) }, timeoutMs)
      const onMessage = (reply: Reply): void => { cleanup(); resolve(reply) }
      const onExit = (): void => { cleanup(); reject(new Error(`${this.name} ${this.exited ?? 'exited'} during ${request.type}`)) }
      const cleanup = (): void => {
        clearTimeout(timer)
        this.child.off('message', onMessage)
        this.child.off('exit', onExit)
      }
      this.child.on('message', onMessage)
      this.child.once('exit', onExit)
      this.child.send(request)
    })
  }

  /** Asks the worker to stop its peers and exit; kills it (by its pid) if it does not within 10 s. */
  async stop (): Promise<void> {
    if (this.exited != null) return
    const exit = new Promise(resolve => this.child.once('exit', resolve))
    this.child.send({ type: 'stop' })
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000)
    await exit
    clearTimeout(timer)
  }
}
