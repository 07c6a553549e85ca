// `npm run vhost-user-blk -- --socket PATH --disk FILE [--read-only] [--queues N] [--serial ID]
// [--io sync|threads|auto] [--heap-stats SECONDS]`:
// the virtio-blk device model (model.ts) served to a real VMM (QEMU's
// vhost-user-blk-pci) over vhost-user. Run with --help for the options.
//
//   npm run vhost-user-blk -- --socket /tmp/vblk.sock --disk disk.img
//   qemu-system-x86_64 ... -object memory-backend-memfd,id=mem,size=512M,share=on \
//     -machine memory-backend=mem -chardev socket,id=c0,path=/tmp/vblk.sock \
//     -device vhost-user-blk-pci,chardev=c0,num-queues=1
import * as fs from 'node:fs'

import { DiskError, DiskImage } from './disk'
import { featureNames } from './features'
import { HeapStats } from './heap-stats'
import { BlkModel } from './model'
import { UsageError } from './options'
import { BlkVhostUserDevice } from './vhost-user-device'
import { loadVhostUser } from './vhost-user-api'
import { parseVhostUserOptions, VHOST_USER_HELP, type VhostUserOptions } from './vhost-user-options'

const log = (line: string): void => console.log(`vhost-user-blk: ${line}`)

async function main(): Promise<number> {
  let o: VhostUserOptions
  try {
    o = parseVhostUserOptions(process.argv.slice(2))
  } catch (e) {
    if (!(e instanceof UsageError)) throw e
    console.error(`vhost-user-blk: ${e.message}\n\n${VHOST_USER_HELP}`)
    return 2
  }
  if (o.help) {
    console.log(VHOST_USER_HELP)
    return 0
  }
  const api = loadVhostUser()
  if (!api.ok) {
    console.error(`vhost-user-blk: cannot serve: ${api.reason}`)
    return 1
  }
  let disk: DiskImage
  try {
    if (!o.readOnly && o.createBytes === null && !fs.existsSync(o.disk))
      throw new DiskError('NOT_FOUND', `${o.disk} does not exist (create it, or pass --size MIB)`)
    disk = DiskImage.open({ path: o.disk, sizeBytes: o.createBytes ?? 512, force: true, readOnly: o.readOnly })
  } catch (e) {
    if (!(e instanceof DiskError)) throw e
    console.error(`vhost-user-blk: ${e.message}`)
    return 2
  }
  const model = new BlkModel({ backend: disk, serial: o.serial, readOnly: o.readOnly, numQueues: o.queues })
  const device = new BlkVhostUserDevice({ model, log, io: o.io })
  const backend = new api.VhostUserBackend({ socketPath: o.socket, device })
  // --heap-stats: lines on stdout at an interval, and around each frontend's session.
  const heap = o.heapStats === null ? null : new HeapStats(() => device.stats().requests)
  const heapLine = (line: string): void => console.log(line)
  heap?.every(o.heapStats! * 1000, heapLine)
  backend.on('connect', () => {
    log('frontend connected')
    heap?.report('connect', heapLine)
  })
  backend.on('disconnect', (e?: Error) => {
    log(`frontend disconnected${e ? `: ${e.message}` : ''}`)
    heap?.report('disconnect', heapLine)
  })
  backend.on('error', (e: Error) => log(`error: ${e.message}`))
  backend.on('refused', (e?: Error) => log(`frontend refused${e ? `: ${e.message}` : ''}`))
  try {
    await backend.listen()
  } catch (e) {
    // The backend's message usually names the path already (VhostUserListen).
    const msg = (e as Error).message
    console.error(`vhost-user-blk: ${msg.includes(o.socket) ? msg : `cannot listen on ${o.socket}: ${msg}`}`)
    disk.close()
    return 1
  }
  const holes = disk.readOnly ? null : disk.holeMethod
  log(
    `serving ${disk.path} (${disk.sizeBytes} bytes${o.readOnly ? ', read-only' : ''}, ${o.queues} queue(s), ` +
      `features ${featureNames(model.features).join(' ')}, io ${o.io}${holes ? `, discard: ${holes.method}` : ''})`,
  )
  if (holes?.fallbackReason) log(`discard falls back to zero-filling: ${holes.fallbackReason}`)
  // The handlers first: whoever waits for the line below may signal at once.
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'))
    process.once('SIGTERM', () => resolve('SIGTERM'))
  })
  console.log(`listening on ${o.socket}`)

  const signal = await stopped
  // A second signal while shutting down: give up on a clean exit.
  const hard = () => process.exit(130)
  process.once('SIGINT', hard)
  process.once('SIGTERM', hard)
  log(`${signal}: finishing the requests in flight`)
  await backend.close() // stops the rings: queueStopped waits for their requests
  await device.drain() // then fdatasync
  const s = device.stats()
  disk.close()
  log(
    `flushed and closed ${disk.path}: ${s.requests} requests (${s.reads} reads, ${s.writes} writes, ` +
      `${s.flushes} flushes, ${s.discards} discards, ${s.writeZeroes} write-zeroes; ${s.ioerr} IOERR, ${s.unsupp} UNSUPP)`,
  )
  return 0
}

main().then(
  (code) => {
    // Exit now, whatever handles the backend may still hold: stdout is synchronous here.
    process.exit(code)
  },
  (e: unknown) => {
    console.error(e)
    process.exitCode = 1
  },
)
