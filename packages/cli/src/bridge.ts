/**
 * Joins this process's stdin/stdout to a control session socket for `punchgate connect`:
 * stdin's EOF half-closes the tunnel; the remote's close (EOF on the socket) ends the
 * bridge once stdout has taken every byte, whether or not stdin is still open.
 */
import type { Socket } from 'node:net'

/** The tunnel broke (reset on the remote side, or the daemon went away). */
export class TunnelBrokenError extends Error {
  static readonly NAME = 'TunnelBrokenError'

  constructor (reason: string) {
    super(`the tunnel broke: ${reason}`)
    this.name = TunnelBrokenError.NAME
  }
}

export async function bridgeStdio (socket: Socket, stdin: NodeJS.ReadableStream, stdout: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = false
    const finish = (err?: Error): void => {
      if (done) return
      done = true
      stdin.off('data', onStdinData)
      stdin.off('end', onStdinEnd)
      stdin.off('error', onStdinError)
      stdout.off('error', onStdoutError)
      // A paused stdin no longer holds the event loop: the process can exit while it is open.
      stdin.pause()
      if (err != null) {
        socket.destroy()
        reject(err)
        return
      }
      socket.end()
      resolve()
    }

    const onStdinData = (chunk: Buffer | string): void => {
      if (!socket.write(chunk)) {
        stdin.pause()
        socket.once('drain', () => { if (!done) stdin.resume() })
      }
    }
    const onStdinEnd = (): void => { socket.end() }
    const onStdinError = (err: Error): void => finish(new TunnelBrokenError(`stdin: ${err.message}`))
    const onStdoutError = (err: Error): void => finish(new TunnelBrokenError(`stdout: ${err.message}`))

    socket.on('data', (chunk: Buffer) => {
      if (!stdout.write(chunk)) {
        socket.pause()
        stdout.once('drain', () => socket.resume())
      }
    })
    // The empty write's callback runs once everything before it has been handed to the OS.
    let remoteEnded = false
    socket.once('end', () => {
      remoteEnded = true
      stdout.write('', () => finish())
    })
    socket.once('error', err => finish(new TunnelBrokenError(err.message)))
    socket.once('close', () => {
      if (!remoteEnded) finish(new TunnelBrokenError('the daemon closed the session'))
    })

    stdin.on('data', onStdinData)
    stdin.once('end', onStdinEnd)
    stdin.once('error', onStdinError)
    stdout.once('error', onStdoutError)
    socket.resume()
    stdin.resume()
  })
}
