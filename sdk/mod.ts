// The package's root: the client (`shoal/client`) and the worker
// (`shoal/worker`) together. Import from the subpath you need to keep an
// application's imports small: a client does not load the node runtime.
export * from './client.ts';
export * from './worker.ts';
