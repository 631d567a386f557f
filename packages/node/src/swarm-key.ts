/**
 * Private networks: a pre-shared key in the go-ipfs/kubo swarm.key format that
 * @libp2p/pnet reads. Every connection is wrapped in XSalsa20 with it before the
 * libp2p handshake, so a peer without the key cannot complete a connection at all.
 */
import { generateKey } from '@libp2p/pnet'
import { SecretFileError } from './errors.ts'
import { readSecretFile, writeSecretFile } from './secret-file.ts'

const HEADER = '/key/swarm/psk/1.0.0/'
const ENCODING = '/base16/'
/** The key file: header, encoding and 32 key bytes as hex, one per line. */
const SWARM_KEY_FILE_BYTES = HEADER.length + 1 + ENCODING.length + 1 + 64

export function generateSwarmKey (): Uint8Array {
  const key = new Uint8Array(SWARM_KEY_FILE_BYTES)
  generateKey(key)
  return key
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
