/** `punchgate swarm-key --output PATH [--force]`: a new private-network key for --swarm-key. */
import { createSwarmKeyFile } from '@punchgate/node'
import type { Command } from '../command.ts'
import { outputOptions, type OutputArgs } from '../options.ts'

export const swarmKeyCommand: Command<OutputArgs> = {
  command: 'swarm-key',
  describe: 'write a new private network key (mode 0600) for --swarm-key; copy it to every peer of the mesh',
  builder: yargs => yargs.options(outputOptions('swarm key file to create')),
  run: async (args) => {
    await createSwarmKeyFile(args.output, args.force ?? false)
    return 0
  }
}
