// `npm run demo`: a virtio-blk device (device.ts) serving a simulated guest
// driver (workload.ts) from a disk image (disk.ts), with every byte read back
// verified. Run with --help for the options.
import { BlkDevice } from './device'
import { DiskError, DiskImage } from './disk'
import { type DemoOptions, HELP, parseOptions } from './options'
import { Rng } from './random'
import { type RunConfig, buildReport, formatHeader, formatResults, progressLine } from './report'
import { EventFd, Simulation } from './simulation'
import { createVm } from './vm'
import { BlkGuest, type BlkRequest, MAX_REQUEST_SECTORS } from './workload'
import { SECTOR_SIZE } from './protocol'

const MiB = 1024 * 1024
/** The guest's reads and writes stay within this much of the disk (the shadow copy lives in memory). */
const MAX_SPAN_BYTES = 1024 * MiB
const SERIAL = 'virtio-queue-demo'

async function main(): Promise<number> {
  let opts: DemoOptions
  try {
    opts = parseOptions(process.argv.slice(2))
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${HELP}`)
    return 2
  }
  if (opts.help) {
    console.log(HELP)
    return 0
  }
  let disk: DiskImage
  try {
    disk = DiskImage.open({ path: opts.disk, sizeBytes: opts.diskBytes, force: opts.force })
  } catch (e) {
    if (!(e instanceof DiskError)) throw e
    console.error(`virtio-blk demo: ${e.message}`)
    return 2
  }
  try {
    return await run(opts, disk)
  } finally {
    disk.close()
  }
}

async function run(opts: DemoOptions, disk: DiskImage): Promise<number> {
  const spanBytes = Math.min(disk.sectors, MAX_SPAN_BYTES / SECTOR_SIZE) * SECTOR_SIZE
  // What the disk holds now: zeros for a new image, else its current contents.
  const shadow = disk.hadContents ? disk.readRange(0, spanBytes) : Buffer.alloc(spanBytes)
  // Guest RAM: the rings plus room for `depth` requests of up to 64 KiB with headers and tables.
  const memoryBytes = Math.max(
    16 * MiB,
    Math.ceil((opts.depth * 2 * MAX_REQUEST_SECTORS * SECTOR_SIZE) / MiB) * MiB + MiB,
  )
  const vm = createVm<BlkRequest>({ memoryBytes, queueSize: opts.queueSize, eventIdx: opts.eventIdx })
  const rng = new Rng(opts.seed)
  const kick = new EventFd()
  const irq = new EventFd()
  // The simulated driver negotiates neither DISCARD nor WRITE_ZEROES: it sends them as
  // requests the device must answer UNSUPP (workload.ts), so the device does not offer them.
  const device = new BlkDevice(vm.queue, {
    backend: disk,
    serial: SERIAL,
    discard: false,
    writeZeroes: false,
    signalUsedQueue: () => irq.signal(),
  })
  const guest = new BlkGuest(vm, {
    depth: opts.depth,
    total: opts.requests ?? Infinity,
    rng,
    shadow,
    capacitySectors: disk.sectors,
    serial: SERIAL,
    indirectChance: opts.indirectPercent / 100,
  })
  const sim = new Simulation(device, guest, { rng, kick, irq })

  // Ctrl-C: stop submitting, let what is in flight complete, print the summary.
  let interrupted = false
  const onSignal = (): void => {
    interrupted = true
    guest.stopSubmitting()
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)

  const config: RunConfig = {
    requests: opts.requests,
    seconds: opts.seconds,
    queueSize: opts.queueSize,
    depth: opts.depth,
    eventIdx: opts.eventIdx,
    indirectPercent: opts.indirectPercent,
    seed: opts.seed,
    disk: disk.temporary ? 'temporary sparse file' : disk.path,
    diskBytes: disk.sizeBytes,
  }
  // The header goes out before the first progress line (on a TTY the progress line is
  // rewritten in place, and anything printed after it would follow it on the screen).
  if (!opts.json) console.log(formatHeader(config))

  const tty = process.stderr.isTTY === true
  const showProgress = !opts.quiet
  const target = opts.requests === null ? '' : `/${opts.requests}`
  const start = performance.now()
  let nextProgress = start + (tty ? 200 : 1000)
  while (!sim.finished) {
    sim.runFor(50)
    const now = performance.now()
    if (opts.seconds !== null && now - start >= opts.seconds * 1000) guest.stopSubmitting()
    if (showProgress && now >= nextProgress && !sim.finished) {
      const line = progressLine(now - start, device.stats, target)
      if (tty) process.stderr.write(`\r${line}\x1b[K`)
      else process.stderr.write(`${line}\n`)
      nextProgress = now + (tty ? 200 : 1000)
    }
    await new Promise<void>((resolve) => setImmediate(resolve)) // let signals in
  }
  const elapsedMs = performance.now() - start
  if (showProgress && tty) process.stderr.write('\r\x1b[K')
  process.off('SIGINT', onSignal)
  process.off('SIGTERM', onSignal)

  const report = buildReport({
    config,
    elapsedMs,
    device: device.stats,
    guest: guest.stats,
    kicks: { sent: vm.driver.kicksSent, suppressed: vm.driver.kicksSuppressed },
    interrupted,
    failure: sim.failure,
    errors: guest.errors,
  })
  if (opts.json) console.log(JSON.stringify(report, null, 2))
  else console.log(formatResults(report))
  if (interrupted) return 130
  return report.passed ? 0 : 1
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (e: unknown) => {
    console.error(e)
    process.exitCode = 1
  },
)
