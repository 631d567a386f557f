/**
 * `--config FILE`: daemon options from a TOML file. Its keys are the long flag names, and
 * what each accepts comes from the same kinds table as the environment (run.ts), so a new
 * flag is a new key with no code here. The file fills only what the flags and the
 * environment left out. Every error is one line naming the file, the line and the key.
 */
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { parse, TomlError } from 'smol-toml'
import { ConfigError, privatePathProblem, PunchgateError } from '@punchgate/node'
import type { EnvKind } from './env.ts'

/** A config file that cannot be read, is not TOML, or holds a key or value the daemon refuses. */
export class ConfigFileError extends PunchgateError {
  static readonly NAME = 'ConfigFileError'
  readonly kind = 'usage'
  readonly file: string
  readonly line: number
  readonly key: string

  constructor (file: string, line: number, key: string, reason: string) {
    super(`--config ${file}:${line}: ${key}: ${reason}`)
    this.name = ConfigFileError.NAME
    this.file = file
    this.line = line
    this.key = key
  }
}

/** A parsed, checked config file. */
export interface ConfigFile {
  /** Absolute path. */
  path: string
  /** Option -> value, in the form yargs gives the same flag; paths made absolute. */
  values: Record<string, unknown>
  /** The line of `key` (and of `value` inside it, when given and found); 1 when unknown. */
  lineOf: (key: string, value?: string) => number
}

/** Reads and checks `path` against `kinds` (option -> kind); throws ConfigFileError. */
export function readConfigFile (path: string, kinds: Readonly<Record<string, EnvKind>>): ConfigFile {
  const file = resolve(path)
  let text: string
  let problem: string | undefined
  try {
    text = readFileSync(file, 'utf8')
    // It can hold --allow and --trust: whoever can replace it can let themselves in, as with --allow-file.
    problem = privatePathProblem(file)
  } catch (err) {
    throw new ConfigError('config', file, `cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
  if (problem != null) throw new ConfigError('config', file, problem)
  const lines = text.split(/\r?\n/)
  const lineOf = (key: string, value?: string): number => valueLine(lines, key, value)
  let table: Record<string, unknown>
  try {
    table = parse(text)
  } catch (err) {
    if (!(err instanceof TomlError)) throw err
    const reason = (err.message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '')
    throw new ConfigFileError(file, err.line, keyNear(lines, err.line), `not valid TOML: ${reason}`)
  }
  const values: Record<string, unknown> = {}
  for (const [key, raw] of Object.entries(table)) {
    const kind = Object.hasOwn(kinds, key) ? kinds[key] : undefined
    if (kind === undefined) {
      throw new ConfigFileError(file, lineOf(key), key, 'unknown key (the keys are the long flag names)')
    }
    const value = convert(raw, kind, dirname(file))
    if (value instanceof Refusal) throw new ConfigFileError(file, lineOf(key, value.item), key, value.reason)
    values[key] = value
  }
  return { path: file, values, lineOf }
}

/** Why a value does not fit its key; `item` is the offending list item, to find its line. */
class Refusal {
  readonly reason: string
  readonly item?: string

  constructor (reason: string, item?: string) {
    this.reason = reason
    this.item = item
  }
}

function convert (raw: unknown, kind: EnvKind, base: string): unknown {
  if (kind === 'list' || kind === 'specs') {
    // A single string stands for a one-item list: `bootstrap = "/dns4/..."` reads as intended.
    if (typeof raw === 'string') return [raw]
    if (!Array.isArray(raw)) return new Refusal(`expected a list of strings, got ${describe(raw)}`)
    const wrong = raw.find(item => typeof item !== 'string')
    if (wrong !== undefined) return new Refusal(`expected a list of strings, got an item that is ${describe(wrong)}`, String(wrong))
    return raw
  }
  if (kind === 'boolean') return typeof raw === 'boolean' ? raw : new Refusal(`expected true or false, got ${describe(raw)}`)
  if (kind === 'number') {
    return typeof raw === 'number' && Number.isFinite(raw) ? raw : new Refusal(`expected a number, got ${describe(raw)}`)
  }
  if (kind === 'path') return typeof raw === 'string' ? resolve(base, raw) : new Refusal(`expected a file path as a string, got ${describe(raw)}`)
  if (kind === 'string') {
    // Counts and sizes read naturally as numbers (`max-sessions = 64`); the library checks them as it does flags.
    if (typeof raw === 'string') return raw
    if (typeof raw === 'number' && Number.isInteger(raw)) return String(raw)
    return new Refusal(`expected a string, got ${describe(raw)}`)
  }
  if (typeof raw === 'string' && kind.includes(raw)) return raw
  return new Refusal(`expected one of ${kind.join(', ')}, got ${describe(raw)}`)
}

function describe (value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${String(value)}`
  if (Array.isArray(value)) return 'a list'
  if (value instanceof Date) return 'a date'
  return 'a table'
}

function escape (text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** The 1-based line where `key` is set (`key =`, `"key" =`, `[key]`), then of `value` at or after it. */
function valueLine (lines: string[], key: string, value?: string): number {
  const name = `(?:${escape(key)}|"${escape(key)}"|'${escape(key)}')`
  const setting = new RegExp(`^\\s*(?:${name}\\s*=|\\[\\[?\\s*${name}\\s*\\]|${name}\\s*\\.)`)
  const at = lines.findIndex(line => setting.test(line))
  if (at < 0) return 1
  if (value != null) {
    const item = lines.findIndex((line, i) => i >= at && line.includes(value))
    if (item >= 0) return item + 1
  }
  return at + 1
}

/** The key set on line `line` (1-based) or the nearest line above; for syntax errors. */
function keyNear (lines: string[], line: number): string {
  for (let i = Math.min(line, lines.length) - 1; i >= 0; i--) {
    const match = /^\s*(?:"([^"]+)"|'([^']+)'|([A-Za-z0-9_-]+))\s*=/.exec(lines[i] ?? '')
    if (match != null) return match[1] ?? match[2] ?? match[3] ?? '(no key)'
  }
  return '(no key)'
}

/**
 * `err` as a ConfigFileError when it is the library's ConfigError about an option whose
 * value came from the file (`fromFile`); otherwise `err` itself.
 */
export function blameConfigFile (err: unknown, file: ConfigFile, fromFile: ReadonlySet<string>): unknown {
  if (!(err instanceof Error) || err.name !== ConfigError.NAME) return err
  const { flag, value } = err as ConfigError
  if (!fromFile.has(flag)) return err
  const prefix = `--${flag} `
  const reason = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message
  return new ConfigFileError(file.path, file.lineOf(flag, value), flag, reason)
}
