/**
 * `punchgate trust list` and `punchgate trust forget SERVICE`: the provider pins of
 * by-name tunnels (docs/access-control.md). A running daemon reads the file again at its
 * next lookup, so a forget needs no restart.
 */
import { resolve } from 'node:path'
import { defaultIdentityPath, KnownProviders, parseServiceName } from '@punchgate/node'
import type { Command } from '../command.ts'
import { withEnv } from '../env.ts'
import { RuntimeError, UsageError } from '../errors.ts'
import { identityOption, knownProvidersOption, knownProvidersPathFor } from '../options.ts'
import { table } from '../view/format.ts'

const ACTIONS = ['list', 'forget'] as const

export interface TrustArgs {
  action: typeof ACTIONS[number]
  service?: string
  identity?: string
  'known-providers'?: string
}

/** The file the daemon with the same --identity/--known-providers (flags or environment) uses. */
export function knownProvidersFile (args: Pick<TrustArgs, 'identity' | 'known-providers'>, env: NodeJS.ProcessEnv): string {
  const options = withEnv(args, { identity: 'string', 'known-providers': 'string' }, env)
  return resolve(options['known-providers'] ?? knownProvidersPathFor(options.identity ?? defaultIdentityPath(env), env))
}

export const trustCommand: Command<TrustArgs> = {
  command: 'trust <action> [service]',
  describe: 'list the provider pinned for each by-name service, or forget one so the next provider found is accepted',
  builder: yargs => yargs
    .positional('action', { choices: ACTIONS, demandOption: true, describe: 'list, or forget SERVICE' })
    .positional('service', { type: 'string', describe: 'the service whose pin to forget' })
    .options({ identity: identityOption, 'known-providers': knownProvidersOption }),
  run: async (args, io) => {
    const path = knownProvidersFile(args, io.env)
    const known = new KnownProviders(path)
    if (args.action === 'list') {
      if (args.service != null) throw new UsageError('trust list takes no service name')
      const pins = known.list()
      io.stdout.write(pins.length === 0
        ? `no pinned providers (${path})\n`
        : table(['SERVICE', 'PEER', 'FIRST SEEN'], pins.map(p => [p.service, p.peer, p.firstSeen ?? '-'])))
      return 0
    }
    if (args.service == null) throw new UsageError('trust forget needs the SERVICE whose pin to forget')
    const service = parseServiceName('service', args.service, args.service)
    const peer = await known.forget(service)
    if (peer == null) throw new RuntimeError(`no provider is pinned for service ${JSON.stringify(service)} in ${path}`)
    io.stdout.write(`forgot ${service} (was ${peer}); the next provider a tunnel to it uses is pinned\n`)
    return 0
  }
}
