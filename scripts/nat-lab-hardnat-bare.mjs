#!/usr/bin/env node
// The hard-NAT methods with bare UDP sockets, for the NAT lab (scripts/nat-lab-hardnat-bare.sh):
// what the lab's routers let through, apart from Punchgate's own code. Prints one JSON line.
//
//   fan TARGET SOCKETS MS          the symmetric side of the birthday method: SOCKETS sockets
//                                  (random local ports) each send to TARGET (IP:PORT, the cone
//                                  side's mapping) once a second; the first socket that hears
//                                  TARGET answers it and wins
//   spray IP LOCAL PROBES RATE MS  the cone side: from local port LOCAL, send to PROBES random
//                                  ports of IP (1024-65535), RATE per second, until IP answers
//   predict TARGET OBSERVER MS     the symmetric side of port prediction: one fresh socket sends
//                                  to OBSERVER (learns nothing itself; the observer logs it),
//                                  then to TARGET once every 100 ms until TARGET is heard
//   window IP FIRST COUNT LOCAL MS the cone side of port prediction: from LOCAL, send to ports
//                                  FIRST..FIRST+COUNT-1 of IP every 100 ms until IP answers
//   observe PORT MS                an observer: prints the first sender's address as seen
//
// "won" lines carry ms (since this process started sending) and the addresses of the hit.
import { createSocket } from 'node:dgram'
import { randomInt } from 'node:crypto'

const started = Date.now()

function hostPort (text) {
  const i = text.lastIndexOf(':')
  return { host: text.slice(0, i), port: Number(text.slice(i + 1)) }
}

function done (result) {
  process.stdout.write(`${JSON.stringify({ ...result, ms: Date.now() - started })}\n`)
  process.exit(0)
}

function bind (port) {
  const socket = createSocket('udp4')
  return new Promise((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(port, () => { resolve(socket) })
  })
}

function giveUpAfter (ms, result) {
  setTimeout(() => { done({ won: false, ...result() }) }, ms)
}

async function fan (target, count, ms) {
  const to = hostPort(target)
  const sockets = await Promise.all(Array.from({ length: count }, () => bind(0)))
  for (const socket of sockets) {
    socket.on('message', (_message, from) => {
      if (from.address !== to.host || from.port !== to.port) return
      socket.send('won', to.port, to.host, () => { done({ won: true, socket: socket.address().port, sockets: count }) })
    })
  }
  const send = () => { for (const socket of sockets) socket.send('fan', to.port, to.host) }
  send()
  setInterval(send, 1000)
  giveUpAfter(ms, () => ({ sockets: count }))
}

async function spray (ip, local, probes, rate, ms) {
  const socket = await bind(local)
  const ports = new Set()
  while (ports.size < probes) ports.add(randomInt(1024, 65536))
  const order = [...ports]
  let sent = 0
  socket.on('message', (_message, from) => {
    if (from.address !== ip) return
    socket.send('won', from.port, from.address, () => { done({ won: true, port: from.port, sent }) })
  })
  // Batches every 20 ms: timers are not precise enough for one datagram each at 250/s.
  const batch = Math.max(1, Math.round(rate / 50))
  const timer = setInterval(() => {
    for (const port of order.slice(sent, sent + batch)) socket.send('probe', port, ip)
    sent = Math.min(sent + batch, order.length)
    if (sent === order.length) clearInterval(timer)
  }, 1000 * batch / rate)
  giveUpAfter(ms, () => ({ sent }))
}

async function predict (target, observer, ms) {
  const to = hostPort(target)
  const seen = hostPort(observer)
  const socket = await bind(0)
  socket.send('observe', seen.port, seen.host)
  socket.on('message', (_message, from) => {
    if (from.address !== to.host || from.port !== to.port) return
    socket.send('won', to.port, to.host, () => { done({ won: true, socket: socket.address().port }) })
  })
  // The observer's packet first: the next mapping the NAT hands out is the one towards TARGET.
  setTimeout(() => {
    const send = () => socket.send('punch', to.port, to.host)
    send()
    setInterval(send, 100)
  }, 50)
  giveUpAfter(ms, () => ({}))
}

async function window (ip, first, count, local, ms) {
  const socket = await bind(local)
  socket.on('message', (_message, from) => {
    if (from.address !== ip) return
    socket.send('won', from.port, from.address, () => { done({ won: true, port: from.port, offset: from.port - first }) })
  })
  const send = () => { for (let i = 0; i < count; i++) socket.send('probe', first + i, ip) }
  send()
  setInterval(send, 100)
  giveUpAfter(ms, () => ({}))
}

async function observe (port, ms) {
  const socket = await bind(port)
  socket.once('message', (_message, from) => { done({ seen: `${from.address}:${from.port}` }) })
  setTimeout(() => { done({ seen: null }) }, ms)
}

const [command, ...args] = process.argv.slice(2)
const n = (i) => Number(args[i])
if (command === 'fan') await fan(args[0], n(1), n(2))
else if (command === 'spray') await spray(args[0], n(1), n(2), n(3), n(4))
else if (command === 'predict') await predict(args[0], args[1], n(2))
else if (command === 'window') await window(args[0], n(1), n(2), n(3), n(4))
else if (command === 'observe') await observe(n(0), n(1))
else {
  process.stderr.write('usage: nat-lab-birthday.mjs fan|spray|predict|window|observe ... (see the header)\n')
  process.exit(2)
}
