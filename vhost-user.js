'use strict'
// `virtio-queue/vhost-user`: vhost-user backends (typings in lib/vhost-user/index.d.ts).
module.exports = require('./lib/vhost-user/index.js')
