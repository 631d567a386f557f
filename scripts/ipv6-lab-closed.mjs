#!/usr/bin/env node
// ipv6-lab.sh's check that a stateful firewall is in the way: a TCP connection to HOST:PORT
// (a listener behind it) must not open within 1.5 s. Exits 0 when nothing answers (dropped),
// 1 when it connects or is refused (a reset came back: nothing dropped it).
// Usage: node scripts/ipv6-lab-closed.mjs HOST PORT
import { connect } from 'node:net'

const [host, port] = process.argv.slice(2)
const socket = connect({ host, port: Number(port) })
socket.setTimeout(1500)
socket.on('connect', () => { console.log(`open: connected to [${host}]:${port}`); socket.destroy(); process.exitCode = 1 })
socket.on('timeout', () => { console.log(`closed: no answer from [${host}]:${port} in 1.5 s`); socket.destroy() })
socket.on('error', err => { console.log(`not dropped: ${err.message}`); process.exitCode = 1 })
