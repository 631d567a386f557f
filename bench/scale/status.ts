/**
 * A daemon's status over its control socket (docs/protocol.md, "Control socket"): one
 * request, no CLI process, so asking costs the measured node only its answer.
 */
import { connect } from 'node:net'

export interface DaemonStatus {
  peers: Array<{ peer: string, path: string }>
  splice?: { addr: string, active: number, copied: number }
  [key: string]: unknown
}

export async function daemonStatus (socketPath: string): Promise<DaemonStatus> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath)
    let text = ''
    socket.setEncoding('utf8')
    socket.on('error', reject)
    socket.on('connect', () => socket.write('{"op":"status"}\n'))
    socket.on('data', (chunk: string) => { text += chunk })
    socket.on('close', () => {
      try {
        resolve((JSON.parse(text) as { status: DaemonStatus }).status)
      } catch (err) {
        reject(new Error(`no status from ${socketPath}: ${(err as Error).message}`))
      }
    })
  })
}
