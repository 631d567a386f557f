// Waits until a daemon's status satisfies a condition: asks its control socket
// (docs/protocol.md, "Control socket") every 100 ms, with no CLI process per ask.
//   node lab-status.mjs SOCKET CONDITION TIMEOUT_S [PRINT]
// CONDITION and PRINT are JS expressions over `d` (the status). Prints PRINT (default: the
// status as JSON) of the last status; exits 0 once CONDITION held, 1 at the timeout.
import { connect } from 'node:net'

const [socketPath, condition, timeoutS, print = 'JSON.stringify(d)'] = process.argv.slice(2)
const test = new Function('d', `return (${condition})`)
const show = new Function('d', `return (${print})`)
const deadline = Date.now() + Number(timeoutS) * 1000

function ask () {
  return new Promise(resolve => {
    const socket = connect(socketPath)
    let text = ''
    socket.on('error', () => resolve(undefined))
    socket.on('connect', () => socket.write('{"op":"status"}\n'))
    socket.on('data', chunk => { text += chunk })
    socket.on('close', () => {
      try { resolve(JSON.parse(text).status) } catch { resolve(undefined) }
    })
  })
}

let last
for (;;) {
  last = await ask() ?? last
  if (last != null && test(last)) { console.log(show(last)); process.exit(0) }
  if (Date.now() > deadline) { console.log(last != null ? show(last) : 'no status'); process.exit(1) }
  await new Promise(resolve => setTimeout(resolve, 100))
}
