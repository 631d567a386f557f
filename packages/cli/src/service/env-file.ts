/**
 * The service's settings file: PUNCHGATE_<OPTION>=value lines, read by systemd
 * (EnvironmentFile=), by Node (--env-file, under launchd) and by a shell (`set -a; . FILE`).
 * Values are written in the subset all three read the same way: bare when they hold only
 * safe characters, else in double quotes, and never with ", \, $, ` or a line break.
 * Updating rewrites only the lines of the settings that change; comments, unknown
 * variables and the order of the rest stay as they are.
 */
import { UsageError } from '../errors.ts'

/** Setting changes: variable -> its new value, or undefined to remove its line. */
export type SettingChanges = ReadonlyMap<string, string | undefined>

const HEADER = `# Punchgate daemon settings, read by the punchgate service (see \`punchgate up --help\`).
# One PUNCHGATE_<OPTION>=value per line; repeatable options take a comma-separated list.
# \`punchgate up --option value\` rewrites that option's line and restarts the service;
# after editing this file by hand, run \`punchgate up\` to apply it.
`

const LINE = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/
const BARE = /^[A-Za-z0-9_/.:,=@+%-]*$/
const UNSTORABLE = /["\\$`\r\n]/

/** The variables a settings file sets; the last line wins, as in every reader. */
export function readSettings (text: string): Map<string, string> {
  const settings = new Map<string, string>()
  for (const line of text.split('\n')) {
    const match = LINE.exec(line)
    if (match != null) settings.set(match[1] as string, unquote(match[2] as string))
  }
  return settings
}

/** `text` (undefined: a new file) with `changes` applied; throws UsageError for a value it cannot hold. */
export function applySettings (text: string | undefined, changes: SettingChanges): string {
  const lines = (text ?? HEADER).split('\n')
  if (lines.at(-1) === '') lines.pop()
  const written = new Set<string>()
  const kept: string[] = []
  for (const line of lines) {
    const variable = LINE.exec(line)?.[1]
    if (variable == null || !changes.has(variable)) {
      kept.push(line)
      continue
    }
    // The first line of a changed variable takes the new value in place; repeats go.
    const value = changes.get(variable)
    if (!written.has(variable) && value !== undefined) kept.push(settingLine(variable, value))
    written.add(variable)
  }
  for (const [variable, value] of changes) {
    if (!written.has(variable) && value !== undefined) kept.push(settingLine(variable, value))
  }
  return `${kept.join('\n')}\n`
}

function settingLine (variable: string, value: string): string {
  if (BARE.test(value)) return `${variable}=${value}`
  if (UNSTORABLE.test(value)) {
    throw new UsageError(`${variable} ${JSON.stringify(value)}: the settings file cannot hold ", \\, $, \` or line breaks`)
  }
  return `${variable}="${value}"`
}

function unquote (value: string): string {
  const quoted = /^"(.*)"$/.exec(value) ?? /^'(.*)'$/.exec(value)
  return quoted?.[1] ?? value
}
