/**
 * Who may use a service, and the allow-list file (`--allow-file`): one peer id per line,
 * `#` starts a comment, blank lines are ignored. The file is configuration, so any problem
 * with it, unreadable, malformed or empty, is a usage error naming the file and line.
 */
import { readFileSync } from 'node:fs'
import { ConfigError } from './errors.ts'
import { privatePathProblem } from './secret-file.ts'
import { parsePeerId } from './specs.ts'

/**
 * Who may use a service: every peer (`--allow-any`, `?allow=any`), every member of the
 * private mesh (`--swarm-key`: only key holders can connect at all), or the listed peer ids.
 */
export type Access = 'any' | 'mesh' | string[]

/**
 * The service's own `?allow=` wins, then the node's `--allow` list, then `--allow-any`,
 * then the mesh. The shapes are ExposeSpec's and NodeConfig's, spelled out so config.ts can
 * import this without an import circle. undefined: nobody may use it (validateConfig refuses such a config).
 */
export function accessOf (
  spec: { allow?: string[] | 'any' },
  node: { allow: string[], allowAny: boolean, swarmKey?: Uint8Array }
): Access | undefined {
  if (spec.allow != null) return spec.allow
  if (node.allow.length > 0) return node.allow
  if (node.allowAny) return 'any'
  if (node.swarmKey != null) return 'mesh'
  return undefined
}

export function parseAllowFile (path: string, text: string, flag = 'allow-file'): string[] {
  const ids: string[] = []
  for (const [i, line] of text.split(/\r?\n/).entries()) {
    const id = line.replace(/#.*/, '').trim()
    if (id === '') continue
    if (/\s/.test(id)) {
      throw new ConfigError(flag, path, `line ${i + 1}: one peer id per line, got ${JSON.stringify(id)}`)
    }
    try {
      ids.push(parsePeerId(flag, path, id))
    } catch {
      throw new ConfigError(flag, path, `line ${i + 1}: ${JSON.stringify(id)} is not a peer id`)
    }
  }
  // An empty list would read as "no list"; a file meant to restrict must never open services.
  if (ids.length === 0) {
    throw new ConfigError(flag, path, 'holds no peer id (only comments or blank lines); add one peer id per line')
  }
  return ids
}

/** Read once at start (synchronously: it is part of validating the configuration). */
export function readAllowFile (path: string, flag = 'allow-file'): string[] {
  let text: string
  let problem: string | undefined
  try {
    text = readFileSync(path, 'utf8')
    // Whoever can write the list can let themselves in (or, for --trust-file, pass as the provider).
    problem = privatePathProblem(path)
  } catch (err) {
    throw new ConfigError(flag, path, `cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
  if (problem != null) throw new ConfigError(flag, path, problem)
  return parseAllowFile(path, text, flag)
}
