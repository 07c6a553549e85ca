// `npm run vhost-user-blk` (examples/virtio-blk/vhost-user.ts): its command line, and
// the whole program run as a child process against a stand-in for the vhost-user
// backend (helpers/fake-vhost-user.ts, loaded through VIRTIO_BLK_VHOST_USER_MODULE)
// that keeps the backend contract: requests reach FILE, read-only, two queues,
// DISCARD punching holes in FILE, connects and disconnects logged, a socket in use
// refused, exit 0 after SIGTERM / SIGINT with the disk flushed. The real frontend
// (QEMU) and the real backend are the guest tests' (guest.spec.ts).
import { type ChildProcess, spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import test, { type ExecutionContext } from 'ava'

import { BlkModel } from '../examples/virtio-blk/model'
import { encodeHeader, VIRTIO_BLK_T_FLUSH } from '../examples/virtio-blk/protocol'
import { BlkVhostUserDevice } from '../examples/virtio-blk/vhost-user-device'
import { MODULE_OVERRIDE_ENV, type Vring } from '../examples/virtio-blk/vhost-user-api'
import { createVm } from '../examples/virtio-blk/vm'
import { nodeBackend } from '../scripts/guest/backends'
import { startNodeBackend } from '../scripts/guest/node-backend'
import { findRig } from '../scripts/guest/rig'
import { parseVhostUserOptions } from '../examples/virtio-blk/vhost-user-options'
import { MemDisk, pattern } from './helpers/blk-mem-disk'

const root = path.resolve(__dirname, '..')
const FAKE = path.join(__dirname, 'helpers', 'fake-vhost-user.ts')
const MiB = 1 << 20

test('command line: defaults, every option, and UsageErrors naming the option', (t) => {
  t.deepEqual(parseVhostUserOptions(['--socket', 's', '--disk', 'd']), {
    help: false,
    socket: 's',
    disk: 'd',
    createBytes: null,
    readOnly: false,
    queues: 1,
    serial: 'virtio-queue-blk',
    heapStats: null,
    io: 'auto',
  })
  t.like(
    parseVhostUserOptions(['--socket=s', '--disk=d', '--read-only', '--queues', '4', '--serial', 'abc', '--size', '8']),
    { readOnly: true, queues: 4, serial: 'abc', createBytes: 8 * MiB },
  )
  t.is(parseVhostUserOptions(['--socket', 's', '--disk', 'd', '--heap-stats', '0.5']).heapStats, 0.5)
  for (const io of ['sync', 'threads', 'auto'] as const)
    t.is(parseVhostUserOptions(['--socket=s', '--disk=d', '--io', io]).io, io)
  t.true(parseVhostUserOptions(['-h']).help)
  const bad: Array<[string[], RegExp]> = [
    [['--disk', 'd'], /--socket/],
    [['--socket', 's'], /--disk/],
    [['--socket', 's', '--disk', 'd', '--queues', '0'], /--queues/],
    [['--socket', 's', '--disk', 'd', '--queues', '65'], /--queues/],
    [['--socket', 's', '--disk', 'd', '--queues', '2x'], /--queues/],
    [['--socket', 's', '--disk', 'd', '--size', '-1'], /--size/],
    [['--socket', 's', '--disk', 'd', '--serial', 'x'.repeat(21)], /--serial/],
    [['--socket', 's', '--disk', 'd', '--bogus'], /bogus/],
    [['--socket', 's', '--disk', 'd', '--heap-stats', '0'], /--heap-stats/],
    [['--socket', 's', '--disk', 'd', '--heap-stats', '1s'], /--heap-stats/],
    [['--socket', 's', '--disk', 'd', '--io', 'async'], /--io: expected sync, threads, auto/],
  ]
  for (const [argv, re] of bad) t.throws(() => parseVhostUserOptions(argv), { code: 'USAGE', message: re })
})

test("the vhost-user adapter: the model's features and config; queueStopped waits for the kick being served; drain flushes", async (t) => {
  const disk = new MemDisk(64)
  const model = new BlkModel({ backend: disk, numQueues: 2 })
  const dev = new BlkVhostUserDevice({ model, maxQueueSize: 256 })
  t.is(dev.features, model.features)
  t.is(dev.numQueues, 2)
  t.is(dev.maxQueueSize, 256)
  const config = Buffer.from(dev.config())
  t.is(config.length, 96, 'zero-padded for frontends that read more fields')
  t.deepEqual(config.subarray(0, 60), model.configSpace())
  t.true(config.subarray(60).every((b) => b === 0))
  const vm = createVm<string>({ memoryBytes: 1 << 20, queueSize: 16, eventIdx: true })
  const events: string[] = []
  let stopped: Promise<void> | null = null
  const ring: Vring = {
    index: 1,
    queue: vm.queue,
    memory: vm.memory,
    ackedFeatures: model.features,
    notify: () => {
      // Called from inside kick(): the request is still being served.
      events.push(`notify inFlight=${dev.inFlight}`)
      stopped = dev.queueStopped(ring).then(() => {
        events.push('stopped')
      })
    },
  }
  dev.queueStarted(ring)
  t.is(dev.queues.size, 1)
  const hdr = vm.allocator.alloc(17, 16)
  const h = Buffer.alloc(16)
  encodeHeader(h, VIRTIO_BLK_T_FLUSH, 0)
  vm.memory.write(hdr, h)
  vm.driver.addChain([
    { addr: hdr, len: 16 },
    { addr: hdr + 16, len: 1, writable: true },
  ])
  dev.kick(ring)
  events.push('kick returned')
  await stopped
  t.deepEqual(events, ['notify inFlight=1', 'kick returned', 'stopped'])
  t.is(dev.queues.size, 0, 'a stopped queue is forgotten')
  t.is(dev.stats().flushes, 1, 'and its stats kept')
  await dev.drain()
  t.is(disk.flushes, 2, 'drain() flushed the disk')
})

interface Cli {
  child: ChildProcess
  out(): string
  waitFor(re: RegExp, ms?: number): Promise<void>
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** Starts the CLI; the test's teardown kills it if the test ended without it exiting. */
function startCli(t: ExecutionContext, args: string[], module = FAKE): Cli {
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/virtio-blk/vhost-user.ts', ...args], {
    cwd: root,
    env: { ...process.env, [MODULE_OVERRIDE_ENV]: module },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let out = ''
  const waiters: Array<() => void> = []
  const onData = (d: Buffer) => {
    out += d
    for (const w of waiters.splice(0)) w()
  }
  child.stdout!.on('data', onData)
  child.stderr!.on('data', onData)
  // 'close', not 'exit': the process may have exited with its last lines still in the pipes
  // ('exit' came first once under load, and the totals line was missing from out()).
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => {
      for (const w of waiters.splice(0)) w()
      resolve({ code, signal })
    }),
  )
  return {
    child,
    out: () => out,
    exit,
    async waitFor(re, ms = 20000) {
      const deadline = Date.now() + ms
      while (!re.test(out)) {
        if (child.exitCode !== null || Date.now() > deadline)
          throw new Error(`no ${re} in the output (${child.exitCode === null ? 'timed out' : 'exited'}):\n${out}`)
        await new Promise<void>((r) => {
          waiters.push(r)
          setTimeout(r, 200)
        })
      }
    },
  }
}

/** A "frontend" of the stand-in backend: one request per line, one answer per line. */
async function connect(socket: string) {
  const s = net.connect(socket)
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve)
    s.once('error', reject)
  })
  s.setEncoding('utf8')
  let buf = ''
  const lines: string[] = []
  const waiting: Array<(l: string) => void> = []
  s.on('data', (d: string) => {
    buf += d
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const l = buf.slice(0, nl)
      buf = buf.slice(nl + 1)
      const w = waiting.shift()
      if (w) w(l)
      else lines.push(l)
    }
  })
  return {
    ask(line: string): Promise<string> {
      s.write(`${line}\n`)
      const l = lines.shift()
      return l !== undefined ? Promise.resolve(l) : new Promise((r) => waiting.push(r))
    },
    close: () =>
      new Promise<void>((r) => {
        s.once('close', () => r())
        s.end()
      }),
  }
}

function tmp(): { dir: string; file: string; socket: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vq-vublk-'))
  return { dir, file: path.join(dir, 'disk.img'), socket: path.join(dir, 'blk.sock') }
}

test('serves FILE: writes reach it, reads come back, FLUSH; connects and disconnects logged; a second frontend sees the data; SIGTERM exits 0 after flushing', async (t) => {
  const { dir, file, socket } = tmp()
  try {
    const cli = startCli(t, ['--socket', socket, '--disk', file, '--size', '4'])
    await cli.waitFor(/^listening on /m)
    t.true(cli.out().includes(`listening on ${socket}`))
    t.is(fs.statSync(file).size, 4 * MiB, '--size created FILE')
    const a = await connect(socket)
    t.is(await a.ask('w 0 8 5'), 'ok status=0 notified=1')
    t.is(await a.ask('f 0'), 'ok status=0 notified=2')
    t.true(
      fs
        .readFileSync(file)
        .subarray(8 * 512, 8 * 512 + 4096)
        .equals(pattern(4096, 5)),
      'the data is in FILE',
    )
    await a.close()
    await cli.waitFor(/frontend disconnected/)
    t.regex(cli.out(), /frontend connected/)
    const b = await connect(socket)
    t.is(await b.ask('r 0 8 5'), 'ok status=0 match=1', "the second frontend reads the first's data")
    t.is(await b.ask('w 0 16 6'), 'ok status=0 notified=2')
    await b.close()
    cli.child.kill('SIGTERM')
    t.deepEqual(await cli.exit, { code: 0, signal: null })
    t.regex(cli.out(), /SIGTERM: finishing the requests in flight/)
    t.regex(cli.out(), /flushed and closed .*: 4 requests \(1 reads, 2 writes, 1 flushes/)
    t.true(
      fs
        .readFileSync(file)
        .subarray(16 * 512, 16 * 512 + 4096)
        .equals(pattern(4096, 6)),
    )
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('a socket path in use by a live listener is refused: a clear message, exit 1; SIGINT exits 0', async (t) => {
  const { dir, file, socket } = tmp()
  try {
    fs.writeFileSync(file, Buffer.alloc(MiB))
    const first = startCli(t, ['--socket', socket, '--disk', file])
    await first.waitFor(/^listening on /m)
    const second = startCli(t, ['--socket', socket, '--disk', file])
    t.is((await second.exit).code, 1)
    t.regex(second.out(), new RegExp(`cannot listen on ${socket}: a live listener is serving this socket`))
    t.notRegex(second.out(), /listening on/)
    first.child.kill('SIGINT')
    t.is((await first.exit).code, 0)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('--read-only: writes and DISCARD answer IOERR and FILE is unchanged; reads work', async (t) => {
  const { dir, file, socket } = tmp()
  try {
    const data = Buffer.concat([Buffer.alloc(8 * 512), pattern(4096, 9), Buffer.alloc(MiB - 8 * 512 - 4096)])
    fs.writeFileSync(file, data)
    const cli = startCli(t, ['--socket', socket, '--disk', file, '--read-only'])
    await cli.waitFor(/^listening on /m)
    t.regex(cli.out(), /read-only.*features .*\bRO\b/)
    const c = await connect(socket)
    t.is(await c.ask('w 0 0 1'), 'ok status=1 notified=1')
    t.is(await c.ask('d 0 0 8'), 'ok status=1 notified=2')
    t.is(await c.ask('r 0 8 9'), 'ok status=0 match=1')
    await c.close()
    cli.child.kill('SIGTERM')
    t.is((await cli.exit).code, 0)
    t.true(fs.readFileSync(file).equals(data))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('--queues 2: both queues serve requests, each notifying its own vring; --serial and MQ in the log', async (t) => {
  const { dir, file, socket } = tmp()
  try {
    fs.writeFileSync(file, Buffer.alloc(MiB))
    const cli = startCli(t, ['--socket', socket, '--disk', file, '--queues', '2'])
    await cli.waitFor(/^listening on /m)
    t.regex(cli.out(), /2 queue\(s\), features .*\bMQ\b/)
    const c = await connect(socket)
    t.is(await c.ask('w 0 0 1'), 'ok status=0 notified=1')
    t.is(await c.ask('w 1 8 2'), 'ok status=0 notified=1')
    t.is(await c.ask('w 1 16 3'), 'ok status=0 notified=2')
    t.is(await c.ask('stop 1'), 'stopped')
    t.is(await c.ask('r 0 16 3'), 'ok status=0 match=1')
    await c.close()
    cli.child.kill('SIGTERM')
    t.is((await cli.exit).code, 0)
    const f = fs.readFileSync(file)
    t.true(f.subarray(0, 4096).equals(pattern(4096, 1)))
    t.true(f.subarray(8 * 512, 8 * 512 + 4096).equals(pattern(4096, 2)))
    t.regex(cli.out(), /4 requests \(1 reads, 3 writes/, 'a stopped queue still counts')
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('DISCARD punches a hole in FILE', async (t) => {
  const { dir, file, socket } = tmp()
  try {
    fs.writeFileSync(file, Buffer.alloc(4 * MiB, 0x55))
    const before = fs.statSync(file).blocks
    const cli = startCli(t, ['--socket', socket, '--disk', file])
    await cli.waitFor(/^listening on /m)
    t.regex(cli.out(), /discard: punch-hole\)/)
    const c = await connect(socket)
    t.is(await c.ask(`d 0 ${MiB / 512} ${(2 * MiB) / 512}`), 'ok status=0 notified=1')
    const after = fs.statSync(file).blocks
    t.true(after <= before - (2 * MiB) / 512, `blocks ${before} -> ${after}`)
    const f = fs.readFileSync(file)
    t.is(f.length, 4 * MiB)
    t.true(f.subarray(MiB, 3 * MiB).equals(Buffer.alloc(2 * MiB)))
    t.true(f.subarray(0, MiB).equals(Buffer.alloc(MiB, 0x55)))
    t.true(f.subarray(3 * MiB).equals(Buffer.alloc(MiB, 0x55)))
    await c.close()
    cli.child.kill('SIGTERM')
    t.is((await cli.exit).code, 0)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('refusals before listening: a missing module (exit 1), a missing FILE, bad options (exit 2)', async (t) => {
  const { dir, file, socket } = tmp()
  try {
    const noModule = startCli(t, ['--socket', socket, '--disk', file], path.join(dir, 'no-such-module'))
    t.is((await noModule.exit).code, 1)
    t.regex(noModule.out(), /cannot serve: .*not found/)
    const noDisk = startCli(t, ['--socket', socket, '--disk', file])
    t.is((await noDisk.exit).code, 2)
    t.regex(noDisk.out(), /does not exist \(create it, or pass --size MIB\)/)
    const usage = startCli(t, ['--socket', socket])
    t.is((await usage.exit).code, 2)
    t.regex(usage.out(), /--disk FILE is required/)
    t.false(fs.existsSync(socket))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test("the guest rig's node backend: skipped while virtio-queue/vhost-user is missing, started and stopped (exit 0) when present", async (t) => {
  const saved = process.env[MODULE_OVERRIDE_ENV]
  const { dir, file, socket } = tmp()
  try {
    process.env[MODULE_OVERRIDE_ENV] = path.join(dir, 'vhost-user')
    t.regex(nodeBackend.notYetBuilt!() ?? '', /virtio-queue\/vhost-user\) is not in this build/)
    process.env[MODULE_OVERRIDE_ENV] = path.join(dir, 'broken.js')
    fs.writeFileSync(path.join(dir, 'broken.js'), 'throw new Error("no addon symbol")')
    t.is(nodeBackend.notYetBuilt!(), null, 'a module that is there but broken is not "not yet built"')
    // Unavailable (a failure in CI), for the first reason that applies: the rig, then the module.
    const reason = findRig().rig === null ? /prepare\.sh/ : /no addon symbol/
    t.regex(nodeBackend.unavailable() ?? '', reason, 'it is unavailable: a failure in CI')
    process.env[MODULE_OVERRIDE_ENV] = FAKE // inherited by the child
    t.is(nodeBackend.notYetBuilt!(), null)
    fs.writeFileSync(file, Buffer.alloc(MiB))
    const b = await startNodeBackend({ file, socket, queues: 2, serial: 'x1' })
    t.regex(b.output(), /2 queue\(s\)/)
    t.true(fs.statSync(socket).isSocket())
    t.deepEqual(await b.stop(), { code: 0, signal: null })
    t.false(fs.existsSync(socket))
  } finally {
    if (saved === undefined) delete process.env[MODULE_OVERRIDE_ENV]
    else process.env[MODULE_OVERRIDE_ENV] = saved
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test("the vhost-user adapter serves the vring's current Queue (the backend replaces it on a new memory table)", (t) => {
  const model = new BlkModel({ backend: new MemDisk(64) })
  const dev = new BlkVhostUserDevice({ model })
  const vms = [0, 1].map(() => createVm<string>({ memoryBytes: 1 << 20, queueSize: 16, eventIdx: false }))
  let current = vms[0]!
  const ring: Vring = {
    index: 0,
    get queue() {
      return current.queue
    },
    get memory() {
      return current.memory
    },
    ackedFeatures: model.features,
    notify: () => {},
  }
  const flush = (vm: (typeof vms)[0]) => {
    const hdr = vm.allocator.alloc(17, 16)
    const h = Buffer.alloc(16)
    encodeHeader(h, VIRTIO_BLK_T_FLUSH, 0)
    vm.memory.write(hdr, h)
    vm.memory.writeU8(hdr + 16, 0xff)
    vm.driver.addChain([
      { addr: hdr, len: 16 },
      { addr: hdr + 16, len: 1, writable: true },
    ])
    return hdr + 16
  }
  dev.queueStarted(ring)
  const s0 = flush(vms[0]!)
  dev.kick(ring)
  t.is(vms[0]!.memory.readU8(s0), 0)
  current = vms[1]!
  const s1 = flush(vms[1]!)
  dev.kick(ring)
  t.is(vms[1]!.memory.readU8(s1), 0, 'served from the new Queue')
  t.is(dev.stats().flushes, 2)
})
