/**
 * The node's identity: an Ed25519 key in a file of its own, created 0600 when missing.
 * An existing file that cannot be read or parsed is an error and is never overwritten:
 * replacing it would silently change the peer id everyone knows this node by. A file the
 * group or others can read is refused: whoever holds the key can impersonate the node. So is
 * one in a directory others can write, or owned by another user (secret-file.ts).
 */
import { mkdir, open, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { homedir } from 'node:os'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { IdentityError } from './errors.ts'
import { privatePathProblem, writeSecretFile } from './secret-file.ts'

export interface Identity {
  privateKey: PrivateKey
  peerId: string
  path: string
  created: boolean
}

/** `$XDG_STATE_HOME/punchgate`, else `~/.local/state/punchgate` (macOS: `~/Library/Application Support/punchgate`). */
export function defaultStateDir (env: NodeJS.ProcessEnv = process.env, platform = process.platform): string {
  if (env.XDG_STATE_HOME != null && env.XDG_STATE_HOME !== '') {
    return join(env.XDG_STATE_HOME, 'punchgate')
  }
  const home = env.HOME ?? homedir()
  return platform === 'darwin'
    ? join(home, 'Library', 'Application Support', 'punchgate')
    : join(home, '.local', 'state', 'punchgate')
}

export function defaultIdentityPath (env: NodeJS.ProcessEnv = process.env, platform = process.platform): string {
  return join(defaultStateDir(env, platform), 'identity.key')
}

/** Reads the key file, checking the mode of the very file read (no gap between check and read). */
async function readKeyFile (path: string): Promise<Buffer> {
  const file = await open(path, 'r')
  try {
    const stats = await file.stat()
    const mode = stats.mode
    if (stats.isFile() && (mode & 0o077) !== 0 && process.platform !== 'win32') {
      const octal = (mode & 0o777).toString(8).padStart(4, '0')
      throw new IdentityError(path, `is accessible by group or others (mode ${octal}); run chmod 600 on it`)
    }
    return await file.readFile()
  } finally {
    await file.close()
  }
}

/** Refuses a key another local user could read, replace or plant (privatePathProblem). */
function checkPrivate (path: string): void {
  let problem: string | undefined
  try {
    problem = privatePathProblem(path)
  } catch (err) {
    throw new IdentityError(path, `cannot check (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
  if (problem != null) throw new IdentityError(path, problem)
}

export async function loadOrCreateIdentity (path: string): Promise<Identity> {
  let bytes: Buffer | undefined
  try {
    checkPrivate(path)
    bytes = await readKeyFile(path)
  } catch (err) {
    if (err instanceof IdentityError) throw err
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'ENOENT') {
      throw new IdentityError(path, `cannot read (${code ?? (err as Error).message})`)
    }
  }

  if (bytes != null) {
    let privateKey: PrivateKey
    try {
      privateKey = privateKeyFromProtobuf(bytes)
    } catch {
      throw new IdentityError(path, 'not a valid identity key file (left untouched)')
    }
    return { privateKey, peerId: peerIdFromPrivateKey(privateKey).toString(), path, created: false }
  }

  const privateKey = await generateKeyPair('Ed25519')
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 })
    checkPrivate(path)
    // 'wx' fails if another process created the file meanwhile: never clobber a key.
    await writeFile(path, privateKeyToProtobuf(privateKey), { mode: 0o600, flag: 'wx' })
  } catch (err) {
    if (err instanceof IdentityError) throw err
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') {
      return loadOrCreateIdentity(path)
    }
    throw new IdentityError(path, `cannot create (${code ?? (err as Error).message})`)
  }
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey).toString(), path, created: true }
}

/** `punchgate keygen`: a new identity at `path` (0600); an existing file is kept unless `force`. Returns the peer id. */
export async function createIdentityFile (path: string, force: boolean): Promise<string> {
  const privateKey = await generateKeyPair('Ed25519')
  await writeSecretFile('output', path, privateKeyToProtobuf(privateKey), force)
  return peerIdFromPrivateKey(privateKey).toString()
}
