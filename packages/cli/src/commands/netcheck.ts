/**
 * `punchgate netcheck`: what a user runs when a tunnel stays relayed. Measures this host's
 * NAT against the bootstraps (the library's netcheck(), with a throwaway identity and ports
 * of its own, so a daemon running here is left alone) and says what it means.
 * Exit 0: measured; 1: no public node answered; 2: usage.
 */
import { netcheck, printableJson, silentLogger } from '@punchgate/node'
import type { Command } from '../command.ts'
import { UsageError } from '../errors.ts'
import { renderNetcheck } from '../view/netcheck.ts'
import { daemonSettings, runOptions, trapShutdownSignals, type RunArgs } from './run.ts'

export interface NetcheckArgs {
  bootstrap?: string[]
  config?: string
  role?: RunArgs['role']
  'swarm-key'?: string
  'port-mapping'?: boolean
  json?: boolean
}

export const netcheckCommand: Command<NetcheckArgs> = {
  command: 'netcheck',
  describe: "measure this host's NAT against the bootstraps: mapped addresses, cone or symmetric, router port mapping, IPv6, role, which punch methods can work",
  builder: yargs => yargs.options({
    bootstrap: runOptions.bootstrap,
    config: runOptions.config,
    role: runOptions.role,
    'swarm-key': runOptions['swarm-key'],
    'port-mapping': { type: 'boolean', describe: 'ask the default gateway whether it speaks NAT-PMP or UPnP-IGD; --no-port-mapping skips it', defaultDescription: 'true' },
    json: { type: 'boolean', describe: 'print one JSON object instead of text' }
  }),
  run: async (args, io) => {
    const { json, ...daemonArgs } = args
    const { config } = daemonSettings(pick(daemonArgs), io.env)
    if (config.bootstrap.length === 0) throw new UsageError('netcheck measures against public nodes: give --bootstrap (or bootstrap in --config)')
    const trap = trapShutdownSignals()
    try {
      const report = await netcheck(config, { logger: silentLogger, signal: trap.signal })
      io.stdout.write(json === true ? `${printableJson(report)}\n` : renderNetcheck(report))
      return 0
    } finally {
      trap.release()
    }
  }
}

/** Only the options netcheck takes: yargs adds aliases and `_`, which the daemon's settings would not expect. */
function pick (args: Omit<NetcheckArgs, 'json'>): RunArgs {
  const { bootstrap, config, role } = args
  return {
    ...(bootstrap != null ? { bootstrap } : {}),
    ...(config != null ? { config } : {}),
    ...(role != null ? { role } : {}),
    ...(args['swarm-key'] != null ? { 'swarm-key': args['swarm-key'] } : {}),
    ...(args['port-mapping'] != null ? { 'port-mapping': args['port-mapping'] } : {})
  }
}
