/** `punchgate id`: prints the node's peer id, creating the identity if missing. */
import { defaultIdentityPath, loadOrCreateIdentity } from '@punchgate/node'
import type { Command } from '../command.ts'
import { withEnv } from '../env.ts'
import { identityOption } from '../options.ts'

export interface IdArgs {
  identity?: string
}

export const idCommand: Command<IdArgs> = {
  command: 'id',
  describe: "print this node's peer id (creating the identity if missing)",
  builder: yargs => yargs.options({ identity: identityOption }),
  run: async (args, io) => {
    const { identity } = withEnv(args, { identity: 'string' }, io.env)
    const { peerId } = await loadOrCreateIdentity(identity ?? defaultIdentityPath(io.env))
    io.stdout.write(`${peerId}\n`)
    return 0
  }
}
