// Where the real-guest rig lives and whether it is usable: the kernel and initrd that
// scripts/guest/prepare.sh builds under .guest/ (or $VIRTIO_QUEUE_GUEST_DIR), and the
// QEMU programs on PATH.
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

export const repoRoot = path.resolve(__dirname, '..', '..')
export const rigDir = process.env.VIRTIO_QUEUE_GUEST_DIR ?? path.join(repoRoot, '.guest')

export interface Rig {
  kernel: string
  initrd: string
  qemu: string
  storageDaemon: string
  /** What prepare.sh recorded (kernel package and version, modules, QEMU version). */
  info: Record<string, unknown>
}

export interface RigStatus {
  rig: Rig | null
  /** Why the rig cannot be used, one entry per missing piece, with the fix. */
  missing: string[]
}

function which(cmd: string): string | null {
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin', '/usr/bin'])
  for (const d of dirs) {
    const p = path.join(d, cmd)
    try {
      fs.accessSync(p, fs.constants.X_OK)
      return p
    } catch {}
  }
  return null
}

/** The rig as prepared on this machine, or what is missing. */
export function findRig(): RigStatus {
  const missing: string[] = []
  const kernel = path.join(rigDir, 'vmlinuz')
  const initrd = path.join(rigDir, 'initrd.cpio')
  const qemu = which('qemu-system-x86_64')
  const storageDaemon = which('qemu-storage-daemon')
  const prepare = 'run `bash scripts/guest/prepare.sh` (as root it installs the Debian packages too)'
  if (!qemu) missing.push(`qemu-system-x86_64 is not installed (Debian package qemu-system-x86): ${prepare}`)
  if (!storageDaemon)
    missing.push(`qemu-storage-daemon is not installed (Debian package qemu-system-common): ${prepare}`)
  if (!fs.existsSync(kernel) || !fs.existsSync(initrd)) missing.push(`no guest kernel/initrd in ${rigDir}: ${prepare}`)
  if (missing.length > 0 || !qemu || !storageDaemon) return { rig: null, missing }
  let info: Record<string, unknown> = {}
  try {
    info = JSON.parse(fs.readFileSync(path.join(rigDir, 'rig.json'), 'utf8'))
  } catch {}
  return { rig: { kernel, initrd, qemu, storageDaemon, info }, missing }
}

/** True when a missing rig must fail the tests rather than skip them (CI, or asked for). */
export function guestsRequired(): boolean {
  return process.env.CI === 'true' || process.env.VIRTIO_QUEUE_REQUIRE_GUESTS === '1'
}

/** Whether qemu-storage-daemon here was built with io_uring (aio=io_uring): it then starts and keeps running. */
export function hasIoUring(storageDaemon: string): boolean {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vq-uring-'))
  const file = path.join(dir, 'probe.img')
  fs.writeFileSync(file, Buffer.alloc(4096))
  try {
    const r = spawnSync(storageDaemon, ['--blockdev', `driver=file,node-name=f,filename=${file},aio=io_uring`], {
      encoding: 'utf8',
      timeout: 1000,
      killSignal: 'SIGKILL',
    })
    return (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT'
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
