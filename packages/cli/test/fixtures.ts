/** Running the CLI in-process with captured output, as a real process, and in temp dirs. */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import type { TestContext } from 'node:test'
import type { Io, Output } from '../src/command.ts'
import { main } from '../src/main.ts'

export const BIN = new URL('../bin/punchgate.js', import.meta.url).pathname

export interface Captured extends Output {
  text: () => string
}

export function capture (isTTY = false): Captured {
  let text = ''
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      text += chunk.toString()
      stream.emit('text')
      done()
    }
  })
  return Object.assign(stream, { isTTY, text: () => text })
}

/** Resolves once what was written to `out` matches `pattern`. */
export async function waitForText (out: Captured, pattern: RegExp, ms = 20_000): Promise<void> {
  if (pattern.test(out.text())) return
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      out.off('text', check)
      reject(new Error(`timed out waiting for ${pattern}`))
    }, ms)
    const check = (): void => {
      if (!pattern.test(out.text())) return
      clearTimeout(timer)
      out.off('text', check)
      resolve()
    }
    out.on('text', check)
  })
}

export function captureIo (env: NodeJS.ProcessEnv = {}): Io & { stdout: Captured, stderr: Captured } {
  return { stdout: capture(), stderr: capture(), env }
}

export interface Result {
  code: number
  stdout: string
  stderr: string
}

/** main() in-process. The environment is only what is given: the host's PUNCHGATE_* never leaks in. */
export async function cli (args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  const io = captureIo(env)
  const code = await main([process.execPath, BIN, ...args], io)
  return { code, stdout: io.stdout.text(), stderr: io.stderr.text() }
}

/**
 * The environment for running the real executable by its shebang: this test's Node first
 * on PATH (`env` may replace PATH), then `env`.
 */
export function binEnv (env: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: `${join(process.execPath, '..')}:${process.env.PATH ?? ''}`, ...env }
}

/** The real executable, run by its shebang with this test's Node first on PATH. */
export async function spawnCli (args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  return new Promise(resolve => {
    execFile(BIN, args, { env: binEnv(env), timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err == null ? 0 : typeof err.code === 'number' ? err.code : -1
      resolve({ code, stdout, stderr })
    })
  })
}

/** A fresh directory removed after the test. */
export async function tempDir (t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'punchgate-cli-'))
  t.after(async () => rm(dir, { recursive: true, force: true }))
  return dir
}

export function lines (text: string): string[] {
  return text.split('\n').filter(line => line !== '')
}

/**
 * Runs the CLI and checks a usage error: exit 2, nothing on stdout, one stderr line that
 * names every part. `dir` is the identity: were the input accepted after all, a directory
 * as the identity fails (exit 1) before any daemon starts.
 */
export async function assertUsageError (args: string[], parts: string[], dir: string, env: NodeJS.ProcessEnv = {}): Promise<void> {
  const { code, stdout, stderr } = await cli([...args, '--identity', dir], { ...env, XDG_STATE_HOME: dir })
  assert.equal(code, 2, stderr)
  assert.equal(stdout, '')
  const [line, ...rest] = lines(stderr)
  assert.deepEqual(rest, [], 'exactly one line')
  assert.match(line ?? '', /^punchgate: .* \(see punchgate --help\)$/)
  for (const part of parts) assert.ok(line?.includes(part), `${JSON.stringify(line)} names ${part}`)
}

export async function packageVersion (): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}
