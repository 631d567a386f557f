/** `punchgate keygen --output PATH [--force]`: a new identity key file; prints its peer id. */
import { createIdentityFile } from '@punchgate/node'
import type { Command } from '../command.ts'
import { outputOptions, type OutputArgs } from '../options.ts'

export const keygenCommand: Command<OutputArgs> = {
  command: 'keygen',
  describe: 'write a new identity key (mode 0600) and print its peer id',
  builder: yargs => yargs.options(outputOptions('identity key file to create')),
  run: async (args, io) => {
    const peerId = await createIdentityFile(args.output, args.force ?? false)
    io.stdout.write(`${peerId}\n`)
    return 0
  }
}
