/**
 * The token and port a relay hands out in a splice offer or answer (docs/splice.md). They
 * say where this node connects and what it sends there, so anything but a 32-byte token in
 * 64 hex characters and a TCP port (1-65535) is refused before a socket is opened.
 */
export interface SpliceTicket {
  token: Buffer
  port: number
}

const TOKEN_HEX = /^[0-9a-f]{64}$/i

export function parseSpliceTicket (frame: Record<string, unknown>): SpliceTicket | undefined {
  const { token, port } = frame
  if (typeof token !== 'string' || !TOKEN_HEX.test(token)) return undefined
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535) return undefined
  return { token: Buffer.from(token, 'hex'), port }
}
