/**
 * The measured public node: the daemon bundle (packages/cli/bin/punchgate.js, which loads
 * packages/cli/dist/) started as users start it, with the environment and Node flags of
 * its shebang (packages/cli/src/node-flags.ts), no --bootstrap (so public: DHT server and
 * relay), listening on loopback.
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Proc, freePort } from '../proc.ts'
import { DAEMON, PUNCHGATE } from '../setups.ts'

const run = promisify(execFile)
const READY_MS = 60_000

export interface PublicNode {
  proc: Proc
  id: string
  /** Its TCP address, ending in /p2p/<id>. */
  addr: string
  /** Its identity file (the control socket is this + `.sock`). */
  key: string
  /** The operator's flags it was given. */
  flags: string[]
}

export async function peerId (dir: string, name: string): Promise<{ key: string, id: string }> {
  const key = join(dir, `${name}.key`)
  const { stdout } = await run(process.execPath, [PUNCHGATE, 'id', '--identity', key])
  return { key, id: stdout.trim() }
}

/** Starts a daemon; `args` come after the bin (flags), `name` names its log file in `logs`. */
export function daemon (logs: string, name: string, args: string[]): Proc {
  const env = { ...process.env, ...DAEMON.env }
  return new Proc(name, process.execPath, [...DAEMON.flags, PUNCHGATE, ...args], join(logs, `${name}.log`), env)
}

/** `flags`: the operator's flags (e.g. --relay-max-reservations), after the bench's own. */
export async function startPublicNode (dir: string, logs: string, name: string, flags: string[]): Promise<PublicNode> {
  const { key, id } = await peerId(dir, name)
  const port = await freePort()
  const proc = daemon(logs, name, [
    '--identity', key,
    '--listen', `/ip4/127.0.0.1/tcp/${port}`,
    '--listen', `/ip4/127.0.0.1/udp/${port}/quic-v1`,
    // Splices on any free port: the default (TCP port + 1) may be taken.
    '--relay-splice', '127.0.0.1:0',
    ...flags
  ])
  await proc.waitForEvent('node.started', READY_MS)
  return { proc, id, key, flags, addr: `/ip4/127.0.0.1/tcp/${port}/p2p/${id}` }
}
