/**
 * Environment fallbacks: PUNCHGATE_<OPTION> supplies an option the command line left out,
 * so flags always beat the environment. Done here rather than with yargs' .env(), which
 * leaves comma lists unsplit, reads "yes" as false, and under .strict() rejects any other
 * PUNCHGATE_* variable (PUNCHGATE_DEBUG) as an unknown option.
 */
import { UsageError } from './errors.ts'

/**
 * How a variable's text becomes an option value; an array lists the allowed values.
 * 'specs' is a comma list of NAME=... specs whose own text may hold commas
 * (`lan=10.0.0.0/8:22,80,web=127.0.0.1:80`): a new item starts only at a comma followed by NAME=.
 * 'path' is a string naming a file: a config file resolves it against its own directory.
 */
export type EnvKind = 'string' | 'path' | 'list' | 'specs' | 'boolean' | 'number' | readonly string[]

const TRUE = new Set(['1', 'true', 'yes', 'on'])
const FALSE = new Set(['0', 'false', 'no', 'off'])

/** `tunnel-by-name` -> `PUNCHGATE_TUNNEL_BY_NAME`. */
export function envVariable (option: string): string {
  return `PUNCHGATE_${option.toUpperCase().replaceAll('-', '_')}`
}

/** Returns `args` with each option in `kinds` that is still undefined filled from `env`. */
export function withEnv<A extends object> (args: A, kinds: { [K in keyof A]?: EnvKind }, env: NodeJS.ProcessEnv): A {
  const filled = { ...args } as Record<string, unknown>
  for (const [option, kind] of Object.entries(kinds) as Array<[string, EnvKind]>) {
    const variable = envVariable(option)
    const text = env[variable]?.trim() ?? ''
    // Empty counts as unset, so `PUNCHGATE_LISTEN= punchgate` blanks a variable for one run.
    if (filled[option] !== undefined || text === '') continue
    filled[option] = parseEnvValue(variable, text, kind)
  }
  return filled as A
}

function parseEnvValue (variable: string, text: string, kind: EnvKind): unknown {
  if (kind === 'string' || kind === 'path') return text
  if (kind === 'list') return text.split(',').map(item => item.trim()).filter(item => item !== '')
  if (kind === 'number') {
    const value = Number(text)
    if (!Number.isFinite(value)) throw new UsageError(`${variable} ${JSON.stringify(text)}: expected a number`)
    return value
  }
  if (kind === 'specs') return text.split(/,(?=\s*[A-Za-z0-9][A-Za-z0-9._-]*=)/).map(item => item.trim()).filter(item => item !== '')
  if (kind === 'boolean') {
    const word = text.toLowerCase()
    if (TRUE.has(word)) return true
    if (FALSE.has(word)) return false
    throw new UsageError(`${variable} ${JSON.stringify(text)}: expected true or false`)
  }
  if (!kind.includes(text)) {
    throw new UsageError(`${variable} ${JSON.stringify(text)}: expected one of ${kind.join(', ')}`)
  }
  return text
}
