/**
 * The daemon's own flags, reused by `punchgate up`: the options come from the run
 * command's definitions, so a flag added there is accepted and stored here too.
 */
import { resolve } from 'node:path'
import type { Argv, Options } from 'yargs'
import { runOptions } from '../commands/run.ts'
import { envVariable } from '../env.ts'
import { UsageError } from '../errors.ts'
import type { SettingChanges } from './env-file.ts'

const DEFINITIONS = Object.entries(runOptions) as Array<[string, Options]>

export const IDENTITY_VARIABLE = envVariable('identity')
export const CONFIG_VARIABLE = envVariable('config')
/** Stored absolute, since the service does not run in the directory `up` ran in. */
const ABSOLUTE_PATHS = new Set([IDENTITY_VARIABLE, CONFIG_VARIABLE])

/**
 * The daemon flags given on the command line, as settings-file changes. An empty value
 * (`--bootstrap ''`) removes the setting; the identity and config paths are made absolute.
 */
export function daemonFlagChanges (args: Record<string, unknown>, cwd: string): SettingChanges {
  const changes = new Map<string, string | undefined>()
  for (const [option, definition] of DEFINITIONS) {
    const value = args[option]
    if (value === undefined) continue
    const variable = envVariable(option)
    const text = definition.array === true ? listText(option, value as unknown[]) : String(value)
    if (text === '') changes.set(variable, undefined)
    else changes.set(variable, ABSOLUTE_PATHS.has(variable) ? resolve(cwd, text) : text)
  }
  return changes
}

/** A repeatable flag's values as the comma-separated list env.ts splits. */
function listText (option: string, values: unknown[]): string {
  const items = values.map(String).filter(item => item !== '')
  const withComma = items.find(item => item.includes(','))
  if (withComma != null) {
    throw new UsageError(`--${option} ${JSON.stringify(withComma)}: a comma would split it into two values in the settings file`)
  }
  return items.join(',')
}

/**
 * Declares the daemon's boolean flags before any command is chosen, so `punchgate --mdns up`
 * reads `up` as the command and not as the flag's value. Not global: `punchgate id --mdns`
 * stays an unknown argument.
 */
export function declareDaemonBooleans (cli: Argv): Argv {
  let declared = cli
  for (const [option, definition] of DEFINITIONS) {
    if (definition.type === 'boolean') declared = declared.option(option, { type: 'boolean', global: false })
  }
  return declared
}
