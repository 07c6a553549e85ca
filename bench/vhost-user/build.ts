// What every mode of compare.ts needs first: the native programs built, and a disk file.
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { ROOT } from './backends'

export function cargoBuild(): void {
  const locked = process.env.VIRTIO_QUEUE_CRATES === 'crates-io' ? [] : ['--locked']
  const manifest = path.join('bench', 'vhost-user', 'Cargo.toml')
  const args = ['build', '--release', '--offline', ...locked, '--manifest-path', manifest, '--target-dir', 'target']
  const r = spawnSync('cargo', args, {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  if (r.status !== 0) throw new Error('cargo build of bench/vhost-user failed')
}

/** A disk file in /dev/shm (tmpfs: the page cache is the disk), written through once. */
export function makeDisk(mib: number): string {
  const dir = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir()
  const file = path.join(dir, `virtio-queue-vhost-user-bench-${process.pid}.img`)
  const fd = fs.openSync(file, 'w')
  const chunk = Buffer.alloc(1 << 20)
  for (let i = 0; i < mib; i++) fs.writeSync(fd, chunk)
  fs.closeSync(fd)
  return file
}
