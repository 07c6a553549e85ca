// The virtio-blk demo end to end (examples/virtio-blk): the simulated guest
// against the device model with every byte verified, the disk image, the CLI.
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import test from 'ava'

import { BlkDevice } from '../examples/virtio-blk/device'
import { type BlockBackend, DiskError, DiskImage } from '../examples/virtio-blk/disk'
import { UsageError, parseOptions } from '../examples/virtio-blk/options'
import { Rng } from '../examples/virtio-blk/random'
import { buildReport } from '../examples/virtio-blk/report'
import { EventFd, Simulation } from '../examples/virtio-blk/simulation'
import { type Vm, createVm } from '../examples/virtio-blk/vm'
import { BlkGuest, type BlkRequest } from '../examples/virtio-blk/workload'
import { MemDisk, pattern } from './helpers/blk-mem-disk'

const SERIAL = 'test-serial-0001'

// ---------------------------------------------------------------- end to end

function endToEnd(o: { eventIdx: boolean; requests: number; backend?: BlockBackend; loseInterrupts?: boolean }) {
  const vm: Vm<BlkRequest> = createVm<BlkRequest>({ memoryBytes: 8 << 20, queueSize: 64, eventIdx: o.eventIdx })
  const backend = o.backend ?? new MemDisk(2048)
  const shadow = Buffer.alloc(backend.sectors * 512)
  const rng = new Rng(42)
  const kick = new EventFd()
  const irq = new EventFd()
  const device = new BlkDevice(vm.queue, {
    backend,
    serial: SERIAL,
    discard: false, // the simulated driver sends these as requests that must be UNSUPP
    writeZeroes: false,
    signalUsedQueue: () => o.loseInterrupts !== true && irq.signal(),
  })
  const guest = new BlkGuest(vm, {
    depth: 32,
    total: o.requests,
    rng,
    shadow,
    capacitySectors: backend.sectors,
    serial: SERIAL,
  })
  const sim = new Simulation(device, guest, { rng, kick, irq })
  while (!sim.finished) sim.runFor(1000)
  const report = buildReport({
    config: {
      requests: o.requests,
      seconds: null,
      queueSize: 64,
      depth: 32,
      eventIdx: o.eventIdx,
      indirectPercent: 25,
      seed: 42,
      disk: 'mem',
      diskBytes: shadow.length,
    },
    elapsedMs: 1,
    device: device.stats,
    guest: guest.stats,
    kicks: { sent: vm.driver.kicksSent, suppressed: vm.driver.kicksSuppressed },
    interrupted: false,
    failure: sim.failure,
    errors: guest.errors,
  })
  return { device, guest, sim, report, vm, shadow }
}

test('end to end over a disk image file: every byte verified, counts add up', (t) => {
  const disk = DiskImage.open({ sizeBytes: 1 << 20 })
  try {
    const { device, guest, sim, report, vm } = endToEnd({ eventIdx: true, requests: 1500, backend: disk })
    t.is(sim.failure, null)
    t.deepEqual(guest.errors, [])
    t.is(guest.stats.verifyErrors, 0)
    t.is(guest.stats.unexpected, 0)
    t.is(guest.stats.submitted, 1500)
    t.is(guest.stats.completed, 1500)
    t.is(device.stats.requests, 1500)
    const st = device.stats
    t.is(st.ok + st.ioerr + st.unsupp + st.noStatus, 1500)
    t.is(
      Object.values(guest.stats.byKind).reduce((a, b) => a + b, 0),
      1500,
    )
    t.is(
      st.reads +
        st.writes +
        st.flushes +
        st.getIds +
        guest.stats.byKind.unsupported +
        guest.stats.byKind.shortHeader +
        guest.stats.byKind.noStatus,
      1500,
    )
    t.true(guest.stats.bytesVerified > 1 << 20)
    t.true(guest.stats.indirect > 0)
    for (const kind of ['unsupported', 'outOfRange', 'shortHeader', 'noStatus', 'getId'] as const)
      t.true(guest.stats.byKind[kind] > 0, kind)
    // Event idx suppressed some kicks and some interrupts.
    t.true(vm.driver.kicksSuppressed > 0)
    t.true(st.notificationsSuppressed > 0)
    t.is(st.notifications + st.notificationsSuppressed, st.wakeups)
    t.true(report.passed)
    t.is(vm.driver.inFlight, 0)
    t.is(vm.allocator.allocationCount, 0)
  } finally {
    disk.close()
  }
})

test('end to end without event idx: no kick is suppressed, and the run is deterministic', (t) => {
  const a = endToEnd({ eventIdx: false, requests: 800 })
  const b = endToEnd({ eventIdx: false, requests: 800 })
  t.true(a.report.passed)
  t.is(a.vm.driver.kicksSuppressed, 0)
  t.is(a.device.stats.notificationsSuppressed, 0)
  t.deepEqual(a.device.stats, b.device.stats)
  t.true(a.shadow.equals(b.shadow))
})

test('the verification catches a device that corrupts reads', (t) => {
  const disk = new MemDisk(2048)
  disk.corrupt = true
  const { guest, report } = endToEnd({ eventIdx: true, requests: 300, backend: disk })
  t.true(guest.stats.byKind.read > 0)
  t.is(guest.stats.verifyErrors, guest.stats.byKind.read) // every read is caught
  t.true(guest.stats.mismatchedBytes >= guest.stats.verifyErrors)
  t.regex(guest.errors[0]!, /bytes differ from what was written/)
  t.false(report.passed)
})

test('a lost interrupt is detected: the run stops as stuck and fails', (t) => {
  const { sim, guest, report } = endToEnd({ eventIdx: true, requests: 200, loseInterrupts: true })
  t.regex(sim.failure!, /^stuck: .*lost notification/)
  t.true(guest.stats.completed < guest.stats.submitted)
  t.false(report.passed)
})

// ---------------------------------------------------------------- disk image

test('DiskImage: a temporary image is sparse-sized, readable and writable, and gone after close()', (t) => {
  const disk = DiskImage.open({ sizeBytes: 4096 })
  t.true(disk.temporary)
  t.is(disk.sectors, 8)
  const data = pattern(1000, 3)
  disk.write([data.subarray(0, 10), data.subarray(10)], 512)
  const a = Buffer.alloc(600)
  const b = Buffer.alloc(400)
  disk.read([a, b], 512)
  t.true(Buffer.concat([a, b]).equals(data))
  disk.close()
  t.false(fs.existsSync(disk.path))
  t.notThrows(() => disk.close())
})

test('DiskImage: creates a missing --disk, refuses one with contents unless forced', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'blk-spec-'))
  try {
    const file = path.join(dir, 'disk.img')
    const created = DiskImage.open({ path: file, sizeBytes: 8192 })
    t.false(created.temporary)
    created.write([Buffer.from('data')], 0)
    created.close()
    t.is(fs.statSync(file).size, 8192) // kept
    const err = t.throws(() => DiskImage.open({ path: file, sizeBytes: 8192 }), { instanceOf: DiskError })
    t.is(err!.code, 'NOT_EMPTY')
    const forced = DiskImage.open({ path: file, sizeBytes: 1 << 20, force: true })
    t.true(forced.hadContents)
    t.is(forced.sizeBytes, 8192) // an existing image keeps its size
    t.is(forced.readRange(0, 4).toString(), 'data')
    forced.close()
    const notFile = t.throws(() => DiskImage.open({ path: dir, sizeBytes: 8192 }), { instanceOf: DiskError })
    t.is(notFile!.code, 'NOT_A_FILE')
    const tiny = t.throws(() => DiskImage.open({ sizeBytes: 100 }), { instanceOf: DiskError })
    t.is(tiny!.code, 'BAD_SIZE')
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

// ---------------------------------------------------------------- the CLI

const MAIN = path.join(__dirname, '..', 'examples', 'virtio-blk', 'main.ts')

function cli(...args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { encoding: 'utf8', timeout: 60_000 })
}

test('npm run demo: a short run passes and --json reports it', (t) => {
  const run = cli('--requests', '400', '--json', '--quiet', '--disk-size', '4')
  t.is(run.status, 0, run.stderr)
  const report = JSON.parse(run.stdout)
  t.true(report.passed)
  t.is(report.requests, 400)
  t.is(report.verification.errors, 0)
  t.is(report.status.ok + report.status.ioerr + report.status.unsupp + report.status.noStatus, 400)
})

test('command line: defaults, and bad options are UsageErrors naming the option', (t) => {
  const d = parseOptions([])
  t.like(d, {
    requests: 30000,
    seconds: null,
    queueSize: 256,
    depth: 64,
    eventIdx: true,
    indirectPercent: 25,
    seed: 1,
    diskBytes: 64 << 20,
    force: false,
  })
  t.like(parseOptions(['--seconds', '2.5', '--no-event-idx']), { requests: null, seconds: 2.5, eventIdx: false })
  const bad: Array<[string[], RegExp]> = [
    [['--depth', '0'], /--depth must be an integer in \[1, 256\]/],
    [['--queue-size', '64', '--depth', '65'], /--depth must be an integer in \[1, 64\]/],
    [['--queue-size', '100'], /power of two/],
    [['--requests', '5', '--seconds', '1'], /not both/],
    [['--seconds', '-1'], /--seconds/],
    [['--bogus'], /bogus/],
  ]
  for (const [argv, message] of bad) {
    const err = t.throws(() => parseOptions(argv), { instanceOf: UsageError, message }, argv.join(' '))
    t.is(err!.code, 'USAGE')
  }
})

test('on a terminal the header comes first, then the progress line, then the results', (t) => {
  // `script` gives the demo a pseudo-terminal for stdout and stderr, as a user's shell does.
  // (util-linux's `script`: Linux only, where the CI runs the suite.)
  if (process.platform !== 'linux') return t.pass('util-linux script(1) is needed for a pseudo-terminal')
  const cmd = `${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(MAIN)} --seconds 0.6 --disk-size 4`
  const run = spawnSync('script', ['-qfec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 60_000 })
  t.is(run.status, 0, run.stdout)
  const out = run.stdout
  const header = out.indexOf('virtio-blk demo: queue size')
  const progress = out.search(/\r\d+\.\ds {2}\d+ requests/)
  const results = out.indexOf('requests        ')
  t.true(header >= 0 && progress > 0 && results > 0, out)
  t.true(header < progress, 'the header before the progress line')
  t.true(progress < results, 'the results after it')
})
