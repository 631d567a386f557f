// Child process of socket-tls.test.ts: a TLS server on a raw TCP socket that, in the
// promise jobs Node runs while it reports the finished handshake, closes the TCP socket
// and then the TLS socket. Without freeSslOffStack, Node frees the OpenSSL state under
// OpenSSL's own stack and the process dies of SIGSEGV; with it, it exits 0.
import { createServer, connect as netConnect } from 'node:net'
import { TLSSocket, connect } from 'node:tls'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { generateCertificate } from '@libp2p/tls/utils'
import { freeSslOffStack } from '../src/socket-tls.ts'

const cert = await generateCertificate(await generateKeyPair('Ed25519'))
const server = createServer(raw => {
  const tls = new TLSSocket(raw, { isServer: true, ...cert, minVersion: 'TLSv1.3' })
  freeSslOffStack(tls)
  tls.on('error', () => {})
  tls.once('secure', () => queueMicrotask(() => { raw.destroy(); tls.destroy() }))
})
server.listen(0, '127.0.0.1', () => {
  const raw = netConnect(server.address().port, '127.0.0.1', () => {
    const tls = connect({ socket: raw, ...cert, rejectUnauthorized: false, minVersion: 'TLSv1.3' })
    tls.on('error', () => {})
    tls.on('secureConnect', () => tls.write('hello'))
    tls.on('close', () => { server.close(); console.log('closed') })
  })
})
