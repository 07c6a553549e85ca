// A stand-in for `virtio-queue/vhost-user` (loaded by the vhost-user-blk CLI through
// VIRTIO_BLK_VHOST_USER_MODULE) that keeps the backend contract but replaces the
// protocol with text lines, so the CLI, its device adapter and its signal handling can
// be tested before the real backend is in the tree. A "frontend" is a plain Unix socket
// client; each of its vrings is a queue in an in-process VM (examples/virtio-blk/vm.ts),
// and it asks for requests one line at a time:
//   w Q SECTOR SEED     OUT 4096 pattern bytes on vring Q   -> "ok status=S notified=N"
//   r Q SECTOR SEED     IN 4096 bytes, compared             -> "ok status=S match=0|1"
//   d Q SECTOR COUNT    DISCARD one segment                 -> "ok status=S"
//   f Q                 FLUSH                               -> "ok status=S"
//   stop Q              queueStopped                        -> "stopped"
import { EventEmitter } from 'node:events'
import * as fs from 'node:fs'
import * as net from 'node:net'

import { encodeHeader, encodeSegment } from '../../examples/virtio-blk/protocol'
import type { VhostUserDevice, Vring } from '../../examples/virtio-blk/vhost-user-api'
import { createVm, type Vm } from '../../examples/virtio-blk/vm'
import { pattern } from './blk-mem-disk'

interface FakeRing extends Vring {
  vm: Vm<string>
  notified: number
}

export class VhostUserBackend extends EventEmitter {
  readonly #path: string
  readonly #device: VhostUserDevice
  #server: net.Server | null = null
  readonly #conns = new Set<{ socket: net.Socket; rings: FakeRing[] }>()

  constructor(o: { socketPath: string; device: VhostUserDevice }) {
    super()
    this.#path = o.socketPath
    this.#device = o.device
  }

  get connected(): boolean {
    return this.#conns.size > 0
  }

  async listen(): Promise<void> {
    if (fs.existsSync(this.#path)) {
      const live = await new Promise<boolean>((resolve) => {
        const c = net.connect(this.#path)
        c.on('connect', () => {
          c.destroy()
          resolve(true)
        })
        c.on('error', () => resolve(false))
      })
      if (live) throw Object.assign(new Error(`${this.#path} is in use by a live listener`), { code: 'SocketInUse' })
      fs.rmSync(this.#path, { force: true })
    }
    const server = net.createServer((s) => this.#accept(s))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.#path, () => resolve())
    })
    this.#server = server
  }

  async close(): Promise<void> {
    for (const c of this.#conns) {
      for (const r of c.rings) await this.#device.queueStopped?.(r)
      c.socket.destroy()
    }
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()))
    fs.rmSync(this.#path, { force: true })
  }

  #accept(socket: net.Socket): void {
    const d = this.#device
    const rings: FakeRing[] = []
    for (let i = 0; i < d.numQueues; i++) {
      const vm = createVm<string>({ memoryBytes: 1 << 20, queueSize: 16, eventIdx: true })
      const ring: FakeRing = {
        index: i,
        queue: vm.queue,
        memory: vm.memory,
        ackedFeatures: d.features,
        vm,
        notified: 0,
        notify: () => ring.notified++,
      }
      rings.push(ring)
    }
    const conn = { socket, rings }
    this.#conns.add(conn)
    d.connected?.()
    this.emit('connect')
    for (const r of rings) d.queueStarted?.(r)
    let buf = ''
    socket.setEncoding('utf8')
    socket.on('data', async (chunk: string) => {
      buf += chunk
      let nl = buf.indexOf('\n')
      while (nl >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        socket.write(`${await this.#request(rings, line)}\n`)
        nl = buf.indexOf('\n')
      }
    })
    socket.on('close', () => {
      if (!this.#conns.delete(conn)) return
      d.disconnected?.()
      this.emit('disconnect')
    })
    socket.on('error', () => {})
  }

  async #request(rings: FakeRing[], line: string): Promise<string> {
    const [op, q, a, b] = line.trim().split(/\s+/)
    const ring = rings[Number(q)]
    if (!ring) return `error: no vring ${q}`
    if (op === 'stop') {
      await this.#device.queueStopped?.(ring)
      return 'stopped'
    }
    const { vm } = ring
    const type = { w: 1, r: 0, f: 4, d: 11 }[op ?? '']
    if (type === undefined) return `error: unknown request ${op}`
    vm.allocator.reset()
    const hdr = vm.allocator.alloc(16 + 4096 + 1, 16)
    const header = Buffer.alloc(16)
    encodeHeader(header, type, op === 'f' ? 0 : BigInt(a ?? 0))
    vm.memory.write(hdr, header)
    const bufs: { addr: number; len: number; writable?: boolean }[] = [{ addr: hdr, len: 16 }]
    let len = 0
    if (op === 'w') {
      vm.memory.write(hdr + 16, pattern(4096, Number(b)))
      len = 4096
      bufs.push({ addr: hdr + 16, len })
    } else if (op === 'r') {
      len = 4096
      bufs.push({ addr: hdr + 16, len, writable: true })
    } else if (op === 'd') {
      const seg = Buffer.alloc(16)
      encodeSegment(seg, 0, { sector: BigInt(a ?? 0), numSectors: Number(b), flags: 0 })
      vm.memory.write(hdr + 16, seg)
      len = 16
      bufs.push({ addr: hdr + 16, len })
    }
    vm.memory.writeU8(hdr + 16 + len, 0xff)
    bufs.push({ addr: hdr + 16 + len, len: 1, writable: true })
    vm.driver.addChain(bufs)
    vm.driver.kick()
    this.#device.kick(ring)
    while (vm.driver.popUsed() !== null) {}
    vm.driver.enableInterrupts() // used_event = what we reaped: interrupt on the next one
    const status = vm.memory.readU8(hdr + 16 + len)
    if (op === 'r')
      return `ok status=${status} match=${vm.memory.read(hdr + 16, 4096).equals(pattern(4096, Number(b))) ? 1 : 0}`
    return `ok status=${status} notified=${ring.notified}`
  }
}
