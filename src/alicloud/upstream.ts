// The upstream moved to upstream/ (one file per part); this keeps `./alicloud/upstream.js`
// importable for modules not yet pointed at upstream/index.js. Delete once none is left.
export * from './upstream/index.js'
