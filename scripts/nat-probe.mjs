#!/usr/bin/env node
// Tiny UDP and TCP probes for the NAT lab self-test (scripts/nat-lab-selftest.sh).
// Each command prints plain lines on stdout, easy to read from bash. Addresses: IP:PORT.
//
//   reflect PORT...                     UDP+TCP on each port: answer every sender with the
//                                       address it was seen from; prints "ready"
//   mapping udp|tcp LOCAL TARGET...     from local port LOCAL, ask each reflector TARGET how
//                                       it saw us; prints the answers on one line
//   inbound udp|tcp LOCAL REFLECTOR MS  open a mapping via REFLECTOR ("mapped ADDR"), then
//                                       wait MS for anyone else to reach LOCAL:
//                                       "received FROM" or "nothing"
//   listen udp|tcp LOCAL MS             no mapping: wait MS for anyone to reach LOCAL
//   send udp|tcp TARGET [FROM_PORT]     send a few datagrams / try one TCP connect
//   punch LOCAL PEER MS                 UDP hole punch: send to PEER from LOCAL every 100 ms
//                                       until PEER is heard ("received FROM") or MS pass
//   loss TARGET COUNT                   UDP round trips to a reflector: "answered N of COUNT"
import { createSocket } from 'node:dgram'
import { createServer, connect } from 'node:net'

const ANSWER_TIMEOUT_MS = 3000
const RESEND_MS = 200

function hostPort (text) {
  const i = text.lastIndexOf(':')
  return { host: text.slice(0, i), port: Number(text.slice(i + 1)) }
}

function print (...words) {
  process.stdout.write(`${words.join(' ')}\n`)
}

function fail (message) {
  process.stderr.write(`nat-probe: ${message}\n`)
  process.exit(1)
}

function bindUdp (port) {
  const socket = createSocket('udp4')
  return new Promise((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(port, '0.0.0.0', () => resolve(socket))
  })
}

async function reflect (ports) {
  for (const port of ports) {
    const udp = await bindUdp(Number(port))
    udp.on('message', (_data, from) => udp.send(`${from.address}:${from.port}`, from.port, from.address))
    const tcp = createServer(socket => {
      socket.on('error', () => socket.destroy())
      socket.end(`${socket.remoteAddress}:${socket.remotePort}`)
    })
    await new Promise(resolve => tcp.listen(Number(port), '0.0.0.0', resolve))
  }
  print('ready')
}

/** Sends to the reflector until it answers (UDP may be lost); resolves with the answer. */
function askUdp (socket, target) {
  const { host, port } = hostPort(target)
  return new Promise((resolve, reject) => {
    const onMessage = (data, from) => {
      if (from.address !== host || from.port !== port) return
      clearInterval(resend)
      clearTimeout(timer)
      socket.off('message', onMessage)
      resolve(data.toString())
    }
    socket.on('message', onMessage)
    const send = () => socket.send('where am I', port, host)
    const resend = setInterval(send, RESEND_MS)
    const timer = setTimeout(() => {
      clearInterval(resend)
      socket.off('message', onMessage)
      reject(new Error(`no UDP answer from ${target}`))
    }, ANSWER_TIMEOUT_MS)
    send()
  })
}

function askTcp (localPort, target) {
  const { host, port } = hostPort(target)
  return new Promise((resolve, reject) => {
    let answer = ''
    const socket = connect({ host, port, localPort, timeout: ANSWER_TIMEOUT_MS })
    socket.on('data', chunk => { answer += chunk })
    socket.on('end', () => { socket.destroy(); resolve(answer) })
    socket.on('timeout', () => { socket.destroy(); reject(new Error(`no TCP answer from ${target}`)) })
    socket.on('error', reject)
  })
}

async function mapping (proto, localPort, targets) {
  if (proto === 'udp') {
    const socket = await bindUdp(localPort)
    const mapped = []
    for (const target of targets) mapped.push(await askUdp(socket, target))
    socket.close()
    print(...mapped)
  } else {
    // Concurrent, so every connection from LOCAL is open at once, as a peer's would be.
    const mapped = await Promise.all(targets.map(target => askTcp(localPort, target)))
    print(...mapped)
  }
}

function received (...words) {
  print(...words)
  process.exit(0)
}

/** Reports the first packet or connection reaching LOCAL from anyone but `ignore`. */
async function awaitInbound (proto, localPort, waitMs, udpSocket, ignore) {
  if (proto === 'udp') {
    const socket = udpSocket ?? await bindUdp(localPort)
    socket.on('message', (_data, from) => {
      if (`${from.address}:${from.port}` !== ignore) received('received', `${from.address}:${from.port}`)
    })
  } else {
    const server = createServer(socket => received('received', `${socket.remoteAddress}:${socket.remotePort}`))
    await new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(localPort, '0.0.0.0', resolve)
    })
  }
  setTimeout(() => received('nothing'), waitMs)
}

async function inbound (proto, localPort, reflector, waitMs) {
  if (proto === 'udp') {
    const socket = await bindUdp(localPort)
    const mapped = await askUdp(socket, reflector)
    await awaitInbound(proto, localPort, waitMs, socket, reflector)
    print('mapped', mapped)
  } else {
    const mapped = await askTcp(localPort, reflector)
    // The reflector closed first, so LOCAL is free to listen on.
    await awaitInbound(proto, localPort, waitMs)
    print('mapped', mapped)
  }
}

async function listen (proto, localPort, waitMs) {
  await awaitInbound(proto, localPort, waitMs)
  print('listening')
}

async function send (proto, target, fromPort) {
  const { host, port } = hostPort(target)
  if (proto === 'udp') {
    const socket = await bindUdp(fromPort ?? 0)
    for (let i = 0; i < 5; i++) {
      socket.send('unsolicited', port, host)
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    socket.close()
    print('sent 5')
    return
  }
  const result = await new Promise(resolve => {
    const socket = connect({ host, port, localPort: fromPort, timeout: 1500 })
    socket.on('connect', () => { socket.destroy(); resolve('connected') })
    socket.on('timeout', () => { socket.destroy(); resolve('timeout') })
    socket.on('error', err => resolve(err.code ?? err.message))
  })
  print(result)
}

/** Keeps sending for a while after hearing the peer, so the peer hears us too. */
const PUNCH_INTERVAL_MS = 100
const PUNCH_LINGER_MS = 500

async function punch (localPort, peer, waitMs) {
  const { host, port } = hostPort(peer)
  const socket = await bindUdp(localPort)
  const timer = setInterval(() => socket.send('punch', port, host), PUNCH_INTERVAL_MS)
  socket.send('punch', port, host)
  const heard = await new Promise(resolve => {
    socket.on('message', (_data, from) => {
      if (from.address === host && from.port === port) resolve(true)
    })
    setTimeout(() => resolve(false), waitMs)
  })
  if (heard) await new Promise(resolve => setTimeout(resolve, PUNCH_LINGER_MS))
  clearInterval(timer)
  socket.close()
  print(heard ? `received ${peer}` : 'nothing')
}

async function loss (target, count) {
  const { host, port } = hostPort(target)
  const socket = await bindUdp(0)
  let answered = 0
  socket.on('message', (_data, from) => {
    if (from.address === host && from.port === port) answered++
  })
  for (let i = 0; i < count; i++) {
    socket.send(`ping ${i}`, port, host)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  // Stragglers: the lab adds no delay, so answers arrive within milliseconds.
  await new Promise(resolve => setTimeout(resolve, 500))
  socket.close()
  print('answered', answered, 'of', count)
}

const [command, ...args] = process.argv.slice(2)
const proto = args[0]
if (['mapping', 'inbound', 'listen', 'send'].includes(command) && proto !== 'udp' && proto !== 'tcp') fail('protocol must be udp or tcp')
try {
  switch (command) {
    case 'reflect': await reflect(args); break
    case 'mapping': await mapping(proto, Number(args[1]), args.slice(2)); break
    case 'inbound': await inbound(proto, Number(args[1]), args[2], Number(args[3])); break
    case 'listen': await listen(proto, Number(args[1]), Number(args[2])); break
    case 'send': await send(proto, args[1], args[2] != null ? Number(args[2]) : undefined); break
    case 'punch': await punch(Number(args[0]), args[1], Number(args[2])); break
    case 'loss': await loss(args[0], Number(args[1])); break
    default: fail('usage: reflect | mapping | inbound | listen | send | punch | loss (see the header of this file)')
  }
} catch (err) {
  fail(err.message)
}
