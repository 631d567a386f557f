/**
 * Noise, loaded on first use. Punchgate peers secure their connections with TLS
 * (socket-tls.ts); Noise is the second choice, for peers that do not speak TLS. Loaded
 * at start-up, @chainsafe/libp2p-noise compiles two WebAssembly modules (ChaCha20-Poly1305
 * and SHA-256) that most daemons never run: together with @libp2p/pnet's, which swarm.ts
 * also loads only when needed, about 4 MB of an idle daemon's RSS (docs/performance.md).
 */
import { serviceCapabilities } from '@libp2p/interface'
import type { ConnectionEncrypter, MessageStream, SecureConnectionOptions, SecuredConnection } from '@libp2p/interface'
import type { NoiseComponents } from '@chainsafe/libp2p-noise'

export function lazyNoise (): (components: NoiseComponents) => ConnectionEncrypter {
  return components => {
    let noise: Promise<ConnectionEncrypter> | undefined
    const load = async (): Promise<ConnectionEncrypter> => {
      noise ??= import('@chainsafe/libp2p-noise').then(module => module.noise()(components))
      return noise
    }
    return {
      protocol: '/noise',
      [Symbol.toStringTag]: '@chainsafe/libp2p-noise',
      [serviceCapabilities]: ['@libp2p/connection-encryption', '@chainsafe/libp2p-noise'],
      secureInbound: async (connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection> =>
        (await load()).secureInbound(connection, options),
      secureOutbound: async (connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection> =>
        (await load()).secureOutbound(connection, options)
    }
  }
}
