/** Option definitions more than one command shares. */
import { join, resolve } from 'node:path'
import type { Options } from 'yargs'
import { defaultIdentityPath, defaultStateDir } from '@punchgate/node'

/**
 * yargs turns a repeated single-value flag into an array. The last one wins, so a
 * wrapper script can set a default that the user overrides by repeating the flag.
 */
export function lastWins<T> (value: T | T[]): T {
  return Array.isArray(value) ? value[value.length - 1] as T : value
}

export const identityOption = {
  type: 'string',
  requiresArg: true,
  coerce: (path: string | string[]) => lastWins(path),
  describe: 'identity key file, created (mode 0600) if missing',
  defaultDescription: 'punchgate/identity.key in $XDG_STATE_HOME (else ~/.local/state)'
} as const satisfies Options

export const controlOption = {
  type: 'string',
  requiresArg: true,
  coerce: (path: string | string[]) => lastWins(path),
  describe: "the daemon's control socket",
  defaultDescription: '$XDG_RUNTIME_DIR/punchgate/control.sock (else in the state directory); with a non-default --identity FILE, FILE.sock'
} as const satisfies Options
export interface OutputArgs {
  output: string
  force?: boolean
}

/** `--output PATH` (required) and `--force`, for the commands that write a key file. */
export function outputOptions (describe: string) {
  return {
    output: {
      type: 'string',
      alias: 'o',
      demandOption: true,
      requiresArg: true,
      coerce: (path: string | string[]) => lastWins(path),
      describe
    },
    force: { type: 'boolean', describe: 'replace the file if it exists', defaultDescription: 'false' }
  } as const satisfies Record<string, Options>
}

export const knownProvidersOption = {
  type: 'string',
  requiresArg: true,
  coerce: (path: string | string[]) => lastWins(path),
  describe: 'file of provider pins: the provider each by-name service trusts (trust on first use)',
  defaultDescription: 'known-providers in the state directory; with a non-default --identity FILE, FILE.known-providers'
} as const satisfies Options

/**
 * Like the control socket: the default identity keeps its pins in the state directory, a
 * daemon with an identity of its own keeps them next to its key file.
 */
export function knownProvidersPathFor (identityPath: string, env: NodeJS.ProcessEnv): string {
  return resolve(identityPath) === resolve(defaultIdentityPath(env))
    ? join(defaultStateDir(env), 'known-providers')
    : `${resolve(identityPath)}.known-providers`
}
