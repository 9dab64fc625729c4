// Imported before cbor-x: under Deno, cbor-x's optional native extractor
// (a Node addon) would crash the process with a V8 symbol error, so Deno uses
// its pure-JS decoder. Node keeps the native speed-up when it is installed.
if ((globalThis as { Deno?: unknown }).Deno) process.env.CBOR_NATIVE_ACCELERATION_DISABLED = 'true';
