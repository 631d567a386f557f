/**
 * Private networks: a pre-shared key in the go-ipfs/kubo swarm.key format that
 * @libp2p/pnet reads. Every connection is wrapped in XSalsa20 with it before the
 * libp2p handshake, so a peer without the key cannot complete a connection at all.
 */
import { randomBytes } from 'node:crypto'
import { SecretFileError } from './errors.ts'
import { readSecretFile, writeSecretFile } from './secret-file.ts'

const HEADER = '/key/swarm/psk/1.0.0/'
const ENCODING = '/base16/'

/**
 * A new key file: header, encoding and 32 random bytes as hex, one per line (what
 * @libp2p/pnet's generateKey writes; that module is not loaded for it, see swarm.ts).
 */
export function generateSwarmKey (): Uint8Array {
  return new TextEncoder().encode(`${HEADER}\n${ENCODING}\n${randomBytes(32).toString('hex')}`)
}

/** Writes a new swarm key to `path` (0600); an existing file is kept unless `force`. */
export async function createSwarmKeyFile (path: string, force: boolean): Promise<void> {
  await writeSecretFile('output', path, generateSwarmKey(), force)
}

/** Checks the format, so a wrong file fails here with its name rather than in the first connection. */
export function parseSwarmKey (path: string, bytes: Uint8Array): Uint8Array {
  const [header, encoding, hex] = new TextDecoder().decode(bytes).split(/\r?\n/)
  if (header !== HEADER || encoding !== ENCODING || !/^[0-9a-fA-F]{64}$/.test(hex ?? '')) {
    throw new SecretFileError('swarm-key', path, `not a swarm key (expected ${HEADER}, ${ENCODING} and 64 hex digits, one per line; make one with punchgate swarm-key)`)
  }
  return bytes
}

/** Reads and checks a swarm key file; refuses one the group or others can read. */
export function readSwarmKey (path: string): Uint8Array {
  return parseSwarmKey(path, readSecretFile('swarm-key', path))
}
