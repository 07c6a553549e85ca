'use strict'
// `virtio-queue/driver`: the guest-driver simulator (typings in driver.d.ts).
module.exports = require('./lib/driver/index.js')
