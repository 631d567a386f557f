/**
 * The allow-list file (`--allow-file`): one peer id per line, `#` starts a comment,
 * blank lines are ignored. It is configuration, so any problem with it, unreadable or
 * malformed, is a usage error naming the file and line.
 */
import { readFileSync } from 'node:fs'
import { ConfigError } from './errors.ts'
import { privatePathProblem } from './secret-file.ts'
import { parsePeerId } from './specs.ts'

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
