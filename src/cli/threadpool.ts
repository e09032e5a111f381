// Imported first by the CLI, before anything queues work on libuv's thread
// pool (which reads the size once, on first use): file I/O that waits on the
// disk (the object store's fsyncs of concurrent uploads) would otherwise queue
// behind Node's default of 4 threads. A size set in the environment is kept.
process.env.UV_THREADPOOL_SIZE ??= '64';
