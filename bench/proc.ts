/**
 * Child processes for the bench: output goes to a log file (a daemon's JSON log is
 * written synchronously and must never wait for the bench to read it), readiness is
 * awaited by watching that file, and stop() ends the process by its pid only.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { openSync, closeSync, readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

export class Proc {
  readonly name: string
  readonly logFile: string
  private readonly child: ChildProcess
  private exited?: string

  constructor (name: string, command: string, args: string[], logFile: string, env: NodeJS.ProcessEnv = process.env) {
    this.name = name
    this.logFile = logFile
    const fd = openSync(logFile, 'w')
    this.child = spawn(command, args, { stdio: ['ignore', fd, fd], env })
    closeSync(fd)
    this.child.on('exit', (code, signal) => { this.exited = `exited with ${signal ?? code}` })
    this.child.on('error', err => { this.exited = err.message })
  }

  get pid (): number {
    if (this.child.pid == null) throw new Error(`${this.name}: ${this.exited ?? 'not started'}`)
    return this.child.pid
  }

  /** Resolves with the first JSON log record that satisfies `match`. */
  async waitForRecord (match: (record: Record<string, unknown>) => boolean, what: string, timeoutMs: number): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs
    let offset = 0
    let partial = ''
    while (Date.now() < deadline) {
      const text = readFileSync(this.logFile, 'utf8')
      partial += text.slice(offset)
      offset = text.length
      const lines = partial.split('\n')
      partial = lines.pop() ?? ''
      for (const line of lines) {
        if (!line.startsWith('{')) continue
        const record = JSON.parse(line) as Record<string, unknown>
        if (match(record)) return record
      }
      if (this.exited != null) throw new Error(`${this.name} ${this.exited} before ${what}; see ${this.logFile}`)
      await sleep(50)
    }
    throw new Error(`${this.name}: no ${what} within ${timeoutMs} ms; see ${this.logFile}`)
  }

  /** Every JSON log record written so far. */
  records (): Array<Record<string, unknown>> {
    return readFileSync(this.logFile, 'utf8').split('\n')
      .filter(line => line.startsWith('{') && line.endsWith('}'))
      .map(line => JSON.parse(line) as Record<string, unknown>)
  }

  async waitForEvent (event: string, timeoutMs: number, match: (record: Record<string, unknown>) => boolean = () => true): Promise<Record<string, unknown>> {
    return this.waitForRecord(r => r.event === event && match(r), `"${event}" event`, timeoutMs)
  }

  /** Resolves once something accepts TCP connections on `port`. */
  async waitForPort (port: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if (this.exited != null) throw new Error(`${this.name} ${this.exited}; see ${this.logFile}`)
      const open = await new Promise<boolean>(resolve => {
        const socket = connect({ host: '127.0.0.1', port })
        socket.once('connect', () => { socket.destroy(); resolve(true) })
        socket.once('error', () => resolve(false))
      })
      if (open) return
      await sleep(50)
    }
    throw new Error(`${this.name}: port ${port} not open within ${timeoutMs} ms; see ${this.logFile}`)
  }

  async stop (): Promise<void> {
    if (this.exited != null || this.child.pid == null) return
    const exit = new Promise(resolve => this.child.once('exit', resolve))
    this.child.kill('SIGTERM')
    const killed = await Promise.race([exit.then(() => true), sleep(5000).then(() => false)])
    if (!killed) {
      this.child.kill('SIGKILL')
      await exit
    }
  }
}

/** A free loopback TCP port (released before returning; the usual small race applies). */
export async function freePort (): Promise<number> {
  const { createServer } = await import('node:net')
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address != null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}
